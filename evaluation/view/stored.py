"""The view's pages that read every score of an experiment (the summary: verdict and
parameter effects; the flip matrix) or of two configs (the side-by-side summary),
computed once and stored in ``view_pages`` with the
fingerprint of their inputs (``summary_fingerprint``: the aggregates, the stored
comparison, the run's status). A sweep stores them when its run ends
(:func:`store_pages`); a page whose fingerprint no longer matches (a rescore, a new run, a
new comparison) is computed on the next request and stored again, so a million
generations cost their seconds once rather than on every request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from typing import Any

from sqlmodel import Session

from evaluation.compare._leaderboard import load_leaderboard, metric_direction, ranked_table
from evaluation.storage.db import insert_ignoring_conflicts
from evaluation.storage.models import ViewPage, utcnow
from evaluation.storage.repository import get_experiment
from evaluation.view.matrix import FlipMatrix, flip_matrix
from evaluation.view.pairs import PairSummary, pair_summary
from evaluation.view.summary import LeaderRow, Summary, experiment_summary, summary_fingerprint

SUMMARY, MATRIX = "summary", "matrix"

#: The stored pages' shape: their classes' field names. A version of evalflow whose pages
#: have other fields finds no stored page matching (it computes them again) rather than
#: failing to read what an older version stored.
PAGE_FORMAT = hashlib.sha256(
    " ".join(
        f"{cls.__name__}:{','.join(f.name for f in fields(cls))}"
        for cls in (Summary, LeaderRow, FlipMatrix, PairSummary)
    ).encode()
).hexdigest()[:12]


def summary_page(session: Session, experiment: str) -> Summary:
    """The experiment's summary: the stored one while its inputs are unchanged."""
    fingerprint = _fingerprint(session, experiment)
    payload = _read(session, experiment, SUMMARY, fingerprint)
    if payload is not None:
        return _summary(payload)
    shown = experiment_summary(session, experiment)
    _keep(session, experiment, SUMMARY, fingerprint, asdict(shown))
    return shown


def flips_page(session: Session, experiment: str) -> FlipMatrix | None:
    """The flip matrix on the leaderboard's first metric, configs in leaderboard order
    (None when nothing is scored): the stored one while its inputs are unchanged."""
    fingerprint = _fingerprint(session, experiment)
    payload = _read(session, experiment, MATRIX, fingerprint)
    if payload is not None:
        return _flips(payload["flips"]) if payload["flips"] else None
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
    fingerprint = json.dumps([PAGE_FORMAT, *key], default=str)
    page = f"pair {metric} {a} {b}"
    payload = _read(session, experiment, page, fingerprint)
    if payload is not None:
        return _pair(payload["pair"]) if payload["pair"] else None
    found = pair_summary(session, row_id, a, b, metric)
    _keep(session, experiment, page, fingerprint, {"pair": found and asdict(found)})
    return found


def store_pages(session: Session, experiment: str) -> None:
    """Compute and store the pages, as a run ends (after its comparison is stored)."""
    summary_page(session, experiment)
    flips_page(session, experiment)


def _fingerprint(session: Session, experiment: str) -> str:
    return json.dumps([PAGE_FORMAT, *summary_fingerprint(session, experiment)], default=str)


def _read(session: Session, experiment: str, page: str, fingerprint: str) -> Any:
    row = session.get(ViewPage, (int(get_experiment(session, experiment).id), page))
    if row is None or row.fingerprint != fingerprint:
        return None
    return row.payload


def _keep(session: Session, experiment: str, page: str, fingerprint: str, payload: Any) -> None:
    """Store ``payload`` (replacing what was stored; concurrent requests computing the
    same page both write it, the last one stays)."""
    row = {
        "experiment_id": int(get_experiment(session, experiment).id),
        "page": page,
        "fingerprint": fingerprint,
        "payload": payload,
        "created_at": utcnow(),
    }
    insert_ignoring_conflicts(
        session, ViewPage, [row], update_columns=("fingerprint", "payload", "created_at")
    )
    session.flush()


def _summary(payload: dict[str, Any]) -> Summary:
    return Summary(
        **{
            **payload,
            "metrics": tuple(payload["metrics"]),
            "other_verdicts": tuple(payload["other_verdicts"]),
            "flags": tuple(payload["flags"]),
            "rows": tuple(
                LeaderRow(**{**r, "cells": tuple(r["cells"]), "fronts": tuple(r["fronts"])})
                for r in payload["rows"]
            ),
            "effects": tuple(payload["effects"]),
            "fronts": tuple(
                {**f, "configs": [tuple(c) for c in f["configs"]]} for f in payload["fronts"]
            ),
            "notes": tuple(payload["notes"]),
        }
    )


def _flips(payload: dict[str, Any]) -> FlipMatrix:
    return FlipMatrix(
        metric=payload["metric"],
        configs=tuple(payload["configs"]),
        better=tuple(tuple(r) for r in payload["better"]),
        only_best={c: tuple(v) for c, v in payload["only_best"].items()},
        cases=int(payload["cases"]),
    )


def _pair(payload: dict[str, Any]) -> PairSummary:
    return PairSummary(
        **{
            **payload,
            "a_better": tuple(payload["a_better"]),
            "b_better": tuple(payload["b_better"]),
        }
    )
