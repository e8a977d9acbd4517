"""The view's pages that read every score of an experiment (the summary: verdict and
parameter effects; the flip matrix) or of two configs (the side-by-side summary),
computed once and stored in ``view_pages`` with the
fingerprint of their inputs (``summary_fingerprint``: the aggregates, the stored
comparison, the run's status; and the statistics code that computed them, so a page an
older evalflow computed is computed again), and the summary's full-suite estimates
(``estimates_page``: also the suite's item banks). A sweep stores them when its run ends
(:func:`store_pages`); a page whose fingerprint no longer matches (a rescore, a new run, a
new comparison) is computed on the next request and stored again, so a million
generations cost their seconds once rather than on every request."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, is_dataclass
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.compare._code import statistics_code
from evaluation.compare._leaderboard import (
    UNSCORED_FLAG,
    load_leaderboard,
    metric_direction,
    ranked_table,
)
from evaluation.itembank import experiment_estimates
from evaluation.itembank.schema import ItemBank
from evaluation.storage.models import Experiment, SuiteRow
from evaluation.storage.pages import keep_page, stored_page
from evaluation.storage.repository import get_experiment
from evaluation.storage.stages import store_pipeline_summary
from evaluation.view.matrix import FlipMatrix, flip_matrix
from evaluation.view.pairs import PairSummary, pair_summary
from evaluation.view.summary import Summary, experiment_summary, summary_fingerprint
from evaluation.wording import LATENCY_MEANS, NOT_A_SAMPLE

SUMMARY, MATRIX, ESTIMATES = "summary", "matrix", "estimates"


@dataclass(frozen=True)
class ShownEstimates:
    """The summary's full-suite estimates as the page shows them
    (``evaluation.itembank.experiment_estimates``; no rows when every config ran every
    case)."""

    metric: str
    rows: tuple[tuple[str, str, str], ...]  # label, estimate with its interval, placement
    notes: tuple[str, ...]  # sorted: why an estimate is the subset's plain mean


def _shapes(kind: Any) -> Iterator[str]:
    """``Name:field,...`` for each dataclass and TypedDict in the type ``kind``, nested
    ones included."""
    if get_origin(kind) is dict and get_args(kind)[0] is not str:
        raise TypeError(f"{kind}: a stored page's dict keys must be str (JSON's)")
    if is_dataclass(kind) or is_typeddict(kind):
        hints = get_type_hints(kind)
        yield f"{kind.__name__}:{','.join(hints)}"
        for hint in hints.values():
            yield from _shapes(hint)
    for arg in get_args(kind):
        yield from _shapes(arg)


def _format(*pages: Any) -> str:
    return hashlib.sha256(
        " ".join(dict.fromkeys(shape for page in pages for shape in _shapes(page))).encode()
    ).hexdigest()[:12]


#: The stored pages' shape: the field names of their classes, nested ones included
#: (read back by ``_from_json`` from the same types). A version of evalflow whose pages
#: have other fields finds no stored page matching (it computes them again) rather than
#: failing to read what an older version stored; and the words the summary shows the
#: latency verdict with (a page stored without them is computed again), and the flag of a
#: metric whose scorer failed (a page stored before its flags said it: computed again).
PAGE_FORMAT = f"{_format(Summary, FlipMatrix, PairSummary)} {LATENCY_MEANS} {UNSCORED_FLAG}"
# with the words that mark a first-cases mean (a page stored with others reads as
# another kind of mean: computed again)
ESTIMATES_FORMAT = f"{_format(ShownEstimates)} {NOT_A_SAMPLE}"


def summary_page(session: Session, experiment: str, *, ending: str | None = None) -> Summary:
    """The experiment's summary: the stored one while its inputs are unchanged
    (``ending``: as ``summary_fingerprint``)."""
    fingerprint = _fingerprint(session, experiment, ending)
    payload = _read(session, experiment, SUMMARY, fingerprint)
    if payload is not None:
        return _from_json(Summary, payload)
    shown = experiment_summary(session, experiment, ending=ending)
    _keep(session, experiment, SUMMARY, fingerprint, asdict(shown))
    return shown


def flips_page(
    session: Session, experiment: str, *, ending: str | None = None
) -> FlipMatrix | None:
    """The flip matrix on the leaderboard's first metric, configs in leaderboard order
    (None when nothing is scored): the stored one while its inputs are unchanged."""
    fingerprint = _fingerprint(session, experiment, ending)
    payload = _read(session, experiment, MATRIX, fingerprint)
    if payload is not None:
        return _from_json(FlipMatrix | None, payload["flips"])
    board = load_leaderboard(session, experiment)
    flips = None
    if board.metrics:
        metric = board.metrics[0]
        order = list(ranked_table(board)["config"])
        row_id = int(get_experiment(session, experiment).id)
        flips = flip_matrix(session, row_id, metric, order, metric_direction(metric))
    _keep(session, experiment, MATRIX, fingerprint, {"flips": flips and asdict(flips)})
    return flips


def pair_summary_page(
    session: Session, experiment: str, a: str, b: str, metric: str
) -> PairSummary | None:
    """``pair_summary`` of configs ``a`` and ``b`` on ``metric``: the stored one while
    its inputs are unchanged; computed afresh on every request while a run is going
    (its generations change under an unchanged fingerprint)."""
    key = summary_fingerprint(session, experiment)
    row_id = int(get_experiment(session, experiment).id)
    if key[1] == "running":
        return pair_summary(session, row_id, a, b, metric)
    fingerprint = json.dumps([PAGE_FORMAT, statistics_code(), *key], default=str)
    page = f"pair {metric} {a} {b}"
    payload = _read(session, experiment, page, fingerprint)
    if payload is not None:
        return _from_json(PairSummary | None, payload["pair"])
    found = pair_summary(session, row_id, a, b, metric)
    _keep(session, experiment, page, fingerprint, {"pair": found and asdict(found)})
    return found


def estimates_page(
    session: Session, experiment: str, *, ending: str | None = None
) -> ShownEstimates:
    """The full-suite estimates of the configs that ran part of the suite: the stored
    ones while the summary's inputs, the suite and its item banks are unchanged;
    computed afresh on every request while a run is going."""
    row = get_experiment(session, experiment)
    fingerprint = _estimates_fingerprint(session, row, ending)
    if fingerprint is None:
        return _estimates(session, int(row.id))
    payload = _read(session, experiment, ESTIMATES, fingerprint)
    if payload is not None:
        return _from_json(ShownEstimates, payload)
    shown = _estimates(session, int(row.id))
    _keep(session, experiment, ESTIMATES, fingerprint, asdict(shown))
    return shown


def stored_estimates(session: Session, experiment: str) -> ShownEstimates | None:
    """``estimates_page`` where it is stored and still holds, else None: nothing is
    computed or written (`show` computes them itself then; read back, they spare it
    numpy and the item fit, ~0.1 s)."""
    row = get_experiment(session, experiment)
    fingerprint = _estimates_fingerprint(session, row, None)
    payload = None if fingerprint is None else _read(session, experiment, ESTIMATES, fingerprint)
    return None if payload is None else _from_json(ShownEstimates, payload)


def _estimates_fingerprint(session: Session, row: Experiment, ending: str | None) -> str | None:
    """What the estimates depend on: the summary's inputs, the suite and its item banks;
    None while the run is going (its generations change under the same fingerprint)."""
    key = summary_fingerprint(session, row.name, ending=ending)
    if key[1] == "running":
        return None
    banks = session.exec(
        select(func.count(), func.max(ItemBank.id)).where(ItemBank.suite == row.suite)
    ).one()
    suite = session.get(SuiteRow, row.suite)
    return json.dumps([ESTIMATES_FORMAT, *key, suite and suite.fingerprint, *banks], default=str)


def _estimates(session: Session, experiment_id: int) -> ShownEstimates:
    metric, estimates = experiment_estimates(session, experiment_id)
    return ShownEstimates(
        metric=metric,
        rows=tuple((e.label, e.estimate.text(), e.placed) for e in estimates),
        notes=tuple(sorted({e.estimate.note for e in estimates if e.estimate.note})),
    )


def store_pages(session: Session, experiment: str, *, ending: str | None = None) -> None:
    """Compute and store the pages, as a run ends (after its comparison is stored), and
    the leaderboard's pipeline summary (what `evalflow show` would sum again).
    ``ending``: the status the run ends with, where it has not ended yet (a sweep stores
    its pages before drawing its report: the report's matplotlib was otherwise held
    under the pages' frames, a 100,000-generation run's highest point of memory). Each
    is committed as it is kept: the next one is computed holding no write lock (SQLite
    takes one writer at a time: another sweep's writes wait for one page's write only)."""
    store_pipeline_summary(session, int(get_experiment(session, experiment).id))
    session.commit()
    for page in (summary_page, flips_page, estimates_page):
        page(session, experiment, ending=ending)
        session.commit()


def _fingerprint(session: Session, experiment: str, ending: str | None = None) -> str:
    key = summary_fingerprint(session, experiment, ending=ending)
    return json.dumps([PAGE_FORMAT, statistics_code(), *key], default=str)


def _read(session: Session, experiment: str, page: str, fingerprint: str) -> Any:
    return stored_page(session, int(get_experiment(session, experiment).id), page, fingerprint)


def _keep(session: Session, experiment: str, page: str, fingerprint: str, payload: Any) -> None:
    experiment_id = int(get_experiment(session, experiment).id)
    keep_page(session, experiment_id, page, fingerprint, payload)


def _from_json(kind: Any, value: Any) -> Any:
    """``value``, as JSON gives it back, as the type ``kind``: dataclasses and TypedDicts
    field by field, tuples and lists item by item, ``X | None``; the rest (str, int,
    float, bool, Any) as it is."""
    if is_dataclass(kind):
        hints = get_type_hints(kind)
        return kind(**{f.name: _from_json(hints[f.name], value[f.name]) for f in fields(kind)})
    if is_typeddict(kind):
        hints = get_type_hints(kind)
        return {key: _from_json(hints[key], item) for key, item in value.items()}
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, UnionType):
        (inner,) = (a for a in args if a is not NoneType)
        return None if value is None else _from_json(inner, value)
    if origin is tuple and args[-1:] == (...,):
        return tuple(_from_json(args[0], item) for item in value)
    if origin is tuple:
        return tuple(_from_json(a, item) for a, item in zip(args, value, strict=True))
    if origin is list:
        return [_from_json(args[0], item) for item in value]
    if origin is dict:
        return {key: _from_json(args[1], item) for key, item in value.items()}
    return value
