"""The view's reads: one page of an experiment's generations at a time, filtered and
sorted in SQL, so the first page of 100k generations costs one indexed query and a count
rather than a frame of everything (benchmarks/perf/view_paging.py measures it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import String, and_, exists, func, or_, select, union_all
from sqlalchemy import cast as sa_cast
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from evaluation.labels import distinguishing_labels
from evaluation.review._names import JUDGE_PREFIX, human_metric
from evaluation.review.schema import Judgement, Rating
from evaluation.review.store import PREFERENCE
from evaluation.storage.dropped import has_dropped, own_configs
from evaluation.storage.models import CaseRow, ConfigRow, ExperimentConfig, Generation, Score
from evaluation.storage.text_search import like_pattern, narrow_output_match, output_matches

PREVIEW_CHARS = 400
SORTS = ("id", "case", "config", "latency", "ttft", "tokens", "metric")
PAIR_SORTS = ("case", "diff", "-diff", "|diff|")
Direction = Literal["asc", "desc"]

_g = Generation.__table__
_c = CaseRow.__table__
_s = Score.__table__


@dataclass(frozen=True)
class Filters:
    """What the rows must satisfy; an empty field filters nothing. ``case`` matches a
    part of the case id; ``min_value``/``max_value`` bound ``metric``'s score (a row
    without that score fails a bound); ``failed``/``truncated`` keep only rows that are
    (True) or are not (False); ``text`` matches a part of the output, the input or a
    reference (case-insensitive for ASCII letters)."""

    configs: tuple[str, ...] = ()
    case: str = ""
    text: str = ""
    group: str = ""
    metric: str = ""
    min_value: float | None = None
    max_value: float | None = None
    failed: bool | None = None
    truncated: bool | None = None


#: Matches are counted up to this many; beyond it a page says "10,000+" (counting a
#: million matching rows took seconds per request).
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Page:
    """One page of rows with the total that matched, for paging links. ``exact``: False
    when more than :data:`COUNT_CAP` matched (``total`` is then the cap); ``more``: a
    page follows this one."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    exact: bool = True
    more: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def total_text(self) -> str:
        return f"{self.total:,}" if self.exact else f"{self.total:,}+"


def _count(session: Session, query: Select) -> tuple[int, bool]:
    """How many rows ``query`` gives, counted up to :data:`COUNT_CAP`, and whether that
    is all of them."""
    capped = query.limit(COUNT_CAP + 1).subquery()
    found = int(session.exec(select(func.count()).select_from(capped)).scalar_one())
    return min(found, COUNT_CAP), found <= COUNT_CAP


@dataclass(frozen=True)
class ExperimentFacts:
    """What the filter form offers: configs in sweep order, groups, metrics. ``labels``:
    each config's label as every page shows it (what varies, ``evaluation.labels``);
    ``full_labels``: the stored ``Config.label``, which a URL may also name."""

    configs: list[dict[str, Any]]
    groups: list[str]
    metrics: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    full_labels: dict[str, str] = field(default_factory=dict)


def experiment_facts(
    session: Session, experiment_id: int, suite: str, metrics: Sequence[str]
) -> ExperimentFacts:
    """Configs (hash, label, model and parameters), the suite's case groups and the
    metrics scored: the experiment's own, then ``human_*`` and ``judge_*`` for the
    criteria rated or judged. Read from the small tables: listing the distinct metrics
    of the scores table took 0.5 s on 100k generations."""
    config_rows = session.exec(
        select(ConfigRow)
        .join(ExperimentConfig, ExperimentConfig.config_hash == ConfigRow.hash)
        .where(ExperimentConfig.experiment_id == experiment_id)
        .order_by(ExperimentConfig.position)
    ).scalars()
    configs = [c.model_dump() for c in config_rows]
    groups = session.exec(
        select(_c.c.group)
        .where(_c.c.suite == suite, _c.c.group.is_not(None))
        .distinct()
        .order_by(_c.c.group)
    ).all()
    # From the ratings (few) to their generations: a join let SQLite walk the million
    # generations of the experiment looking each up in the ratings (200 ms a page).
    in_experiment = select(_g.c.id).where(
        _g.c.id == Rating.generation_id, _g.c.experiment_id == experiment_id
    )
    rated = session.exec(
        select(Rating.criterion)
        .where(Rating.criterion != PREFERENCE, in_experiment.exists())
        .distinct()
    ).all()
    judged = session.exec(
        select(Judgement.criterion)
        .where(Judgement.experiment_id == experiment_id, Judgement.criterion != PREFERENCE)
        .distinct()
    ).all()
    names = [
        *metrics,
        *sorted(human_metric(str(r[0])) for r in rated),
        *sorted(f"{JUDGE_PREFIX}{j[0]}" for j in judged),
    ]
    short = distinguishing_labels([c["label"] for c in configs])
    return ExperimentFacts(
        configs=configs,
        groups=[str(g[0]) for g in groups],
        metrics=list(dict.fromkeys(names)),
        labels={c["hash"]: short[c["label"]] for c in configs},
        full_labels={c["hash"]: c["label"] for c in configs},
    )


def _conditions(
    session: Session, generation, case, filters: Filters, narrow: bool = False
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.case or filters.group:  # the few cases first, then their generations by index
        cases = select(case.c.uid)
        if filters.case:
            cases = cases.where(case.c.case_id.like(like_pattern(filters.case), escape="\\"))
        if filters.group:
            cases = cases.where(case.c.group == filters.group)
        where.append(generation.c.case_uid.in_(cases))
    if filters.text:
        where.append(_text_condition(session, generation, filters.text, narrow))
    if filters.failed is not None:
        failed = generation.c.status == "failed"
        where.append(failed if filters.failed else ~failed)
    if filters.truncated is not None:
        where.append(generation.c.truncated == filters.truncated)
    bounded = filters.min_value is not None or filters.max_value is not None
    if filters.metric and bounded:
        score = [_s.c.generation_id == generation.c.id, _s.c.metric == filters.metric]
        if filters.min_value is not None:
            score.append(_s.c.value >= filters.min_value)
        if filters.max_value is not None:
            score.append(_s.c.value <= filters.max_value)
        where.append(exists().where(*score))
    return where


def _text_condition(session: Session, generation, needle: str, narrow: bool) -> ColumnElement[bool]:
    """The output, the input or a reference contains ``needle``. Cases are few beside
    generations: their text is read directly, their generations found by the index on
    ``case_uid``. ``narrow`` (``text_search.narrow_output_match``): the outputs that
    match are few and listed by the index, and the condition is one list of ids (a
    UNION, not an OR, which SQLite answered by reading the whole experiment); else each
    output is tested."""
    pattern = like_pattern(needle.lower())
    cases = select(_c.c.uid).where(
        or_(
            func.lower(_c.c.input_text).like(pattern, escape="\\"),
            func.lower(sa_cast(_c.c.references, String)).like(pattern, escape="\\"),
        )
    )
    if narrow:
        other = _g.alias("by_case")
        by_case = select(other.c.id).where(other.c.case_uid.in_(cases))
        by_output = output_matches(session.connection(), _g, needle)
        return generation.c.id.in_(union_all(by_output, by_case))
    return or_(
        func.lower(generation.c.output).like(pattern, escape="\\"),
        generation.c.case_uid.in_(cases),
    )


def _score_of(generation, metric: str):
    """``metric``'s score of ``generation`` as a scalar subquery: one lookup in the
    scores' primary key per row, where a join let PostgreSQL hash every score of the
    metric (a million for a side by side of 10,000 rows: 0.9-2 s)."""
    return (
        select(_s.c.value)
        .where(_s.c.generation_id == generation.c.id, _s.c.metric == metric)
        .scalar_subquery()
    )


def generation_page(
    session: Session,
    experiment_id: int,
    filters: Filters = Filters(),
    *,
    sort: str = "id",
    direction: Direction = "asc",
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """One page of generations (output cut to :data:`PREVIEW_CHARS`) with their scores.
    ``sort`` is one of :data:`SORTS`; "metric" sorts by ``filters.metric``'s score.
    Missing values sort last either way; ties go by id."""
    g, c = _g, _c
    narrow = bool(filters.text) and narrow_output_match(session.connection(), filters.text)
    base = select(g.c.id).where(
        g.c.experiment_id == experiment_id, *_conditions(session, g, c, filters, narrow)
    )
    if filters.configs:
        base = base.where(g.c.config_hash.in_(filters.configs))
    elif has_dropped(session, experiment_id):  # as the summary: the last spec's configs
        base = base.where(g.c.config_hash.in_(own_configs(experiment_id)))
    total, exact = _count(session, base)
    columns = {
        "case": g.c.case_uid,  # an experiment's cases are of one suite: the case id's order
        "config": g.c.config_hash,
        "latency": g.c.latency_s,
        "ttft": g.c.ttft_s,
        "tokens": g.c.eval_count,
    }
    page = max(1, page)
    offset = (page - 1) * per_page
    key = columns.get(sort)
    if sort == "metric" and filters.metric:
        # Walked in the order of the scores' (metric, value) index, each score's
        # generation checked against the filters, rather than every generation sorted.
        s = _s.alias("sort_score")
        bounds = [s.c.value.is_not(None)]  # the filter's bounds are on this same score
        if filters.min_value is not None:
            bounds.append(s.c.value >= filters.min_value)
        if filters.max_value is not None:
            bounds.append(s.c.value <= filters.max_value)
        present = select(s.c.generation_id).where(
            s.c.metric == filters.metric,
            *bounds,
            base.where(g.c.id == s.c.generation_id).exists(),
        )
        scored = select(s.c.generation_id).where(
            s.c.generation_id == g.c.id, s.c.metric == filters.metric, s.c.value.is_not(None)
        )
        missing = base.where(~scored.exists())
        ordered = s.c.value.desc() if direction == "desc" else s.c.value.asc()
        ids = _ordered_ids(
            session, present.order_by(ordered, s.c.generation_id), missing.order_by(g.c.id),
            offset, per_page + 1,
        )  # fmt: skip
    elif key is None:
        # With a selective filter the database should find the few rows by its index
        # and sort them; "id + 0" keeps it from walking the whole experiment in id order
        # instead (SQLite's choice at a million rows: 140 ms for one config's page 1).
        selective = filters.configs or filters.case or filters.group or narrow
        by_id = g.c.id + 0 if selective or filters.failed or filters.truncated else g.c.id
        tie = by_id.desc() if direction == "desc" else by_id.asc()
        ids = _ids(session, base.order_by(tie), offset, per_page + 1)
    else:
        ordered = key.desc() if direction == "desc" else key.asc()
        ids = _ordered_ids(
            session, base.where(key.is_not(None)).order_by(ordered, g.c.id),
            base.where(key.is_(None)).order_by(g.c.id), offset, per_page + 1,
        )  # fmt: skip
    more = len(ids) > per_page
    rows = _rows_by_id(session, ids[:per_page], around=filters.text)
    return Page(rows, total, page, per_page, exact, more)


def _ids(session: Session, query: Select, offset: int, limit: int) -> list[int]:
    return [int(r[0]) for r in session.exec(query.limit(limit).offset(offset)).all()]


def _ordered_ids(
    session: Session, present: Select, missing: Select, offset: int, limit: int
) -> list[int]:
    """Ids ``offset`` to ``offset + limit`` of the rows with a value to sort by
    (``present``, in order) followed by the rows without one (``missing``). Read as two
    queries so that each can walk an index (a single ORDER BY with "missing last"
    sorted a million rows per page)."""
    ids = _ids(session, present, offset, limit)
    if len(ids) == limit:
        return ids
    if ids or offset == 0:
        n_present = offset + len(ids)
    else:  # the page starts among the missing: how many have a value, up to the offset
        counted = present.order_by(None).limit(offset).subquery()
        n_present = int(session.exec(select(func.count()).select_from(counted)).scalar_one())
    return ids + _ids(session, missing, max(0, offset - n_present), limit - len(ids))


def _rows_by_id(session: Session, ids: Sequence[int], *, around: str = "") -> list[dict[str, Any]]:
    """The listed generations in ``ids``' order, with a scores dict each. ``around`` (a
    search): each text preview is the part around the first match, not the start."""
    if not ids:
        return []
    g, c = _g, _c
    query = (
        select(
            g.c.id,
            g.c.config_hash,
            g.c.sample_index,
            g.c.status,
            g.c.error,
            func.substr(g.c.output, 1, PREVIEW_CHARS).label("output"),
            func.length(g.c.output).label("output_chars"),
            g.c.truncated,
            g.c.latency_s,
            g.c.ttft_s,
            g.c.eval_count,
            g.c.prompt_eval_count,
            g.c.tokens_per_s,
            g.c.simulated,
            c.c.case_id,
            c.c.group,
            func.substr(c.c.input_text, 1, PREVIEW_CHARS).label("input"),
            func.length(c.c.input_text).label("input_chars"),
            c.c.references,
        )
        .select_from(g.join(c, c.c.uid == g.c.case_uid))
        .where(g.c.id.in_(ids))
    )
    rows = {int(r.id): _with_reference(dict(r._mapping)) for r in session.exec(query)}
    if around:
        _around_match(session, rows, around)
    scores = _scores(session, ids)
    return [rows[i] | {"scores": scores.get(i, {})} for i in ids]


def _around_match(session: Session, rows: dict[int, dict[str, Any]], needle: str) -> None:
    """Each row's output, input and reference preview cut around the first match of
    ``needle`` (case-insensitive for ASCII letters, as the search), read whole for the
    page's rows only; a text without a match keeps its preview."""
    full = session.exec(
        select(_g.c.id, _g.c.output, _c.c.input_text, _c.c.references)
        .select_from(_g.join(_c, _c.c.uid == _g.c.case_uid))
        .where(_g.c.id.in_(list(rows)))
    )
    for r in full:
        row = rows[int(r.id)]
        references = [str(x) for x in r.references or []]
        reference = next((x for x in references if match_at(x, needle) >= 0), None)
        for key, text in (("output", r.output), ("input", r.input_text), ("reference", reference)):
            if text and match_at(text, needle) >= 0:
                row[key] = excerpt(text, needle)
                row[f"{key}_chars"] = None  # the excerpt carries its own "…"


def match_at(text: str, needle: str) -> int:
    """Where ``needle`` first occurs in ``text``, ASCII letters in either case; -1 if not."""
    found = re.search(re.escape(needle), text, re.IGNORECASE | re.ASCII)
    return found.start() if found else -1


def excerpt(text: str, needle: str, width: int = PREVIEW_CHARS) -> str:
    """The part of ``text`` around the first match of ``needle``: from the start of the
    match's line (or a little before the match in a long line), "…" where cut."""
    at = match_at(text, needle)
    if len(text) <= width and at < width // 2:
        return text
    start = max(text.rfind("\n", 0, at) + 1, at - width // 4, 0)
    end = min(len(text), start + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _with_reference(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its first reference cut to the preview (``reference``) and how many
    more there are, in place of the whole list."""
    references = row.pop("references") or []
    first = str(references[0]) if references else ""
    row["reference"] = first[:PREVIEW_CHARS] + ("…" if len(first) > PREVIEW_CHARS else "")
    row["more_references"] = max(0, len(references) - 1)
    return row


def _scores(session: Session, ids: Sequence[int]) -> dict[int, dict[str, float | None]]:
    out: dict[int, dict[str, float | None]] = {}
    if not ids:
        return out
    query = select(_s.c.generation_id, _s.c.metric, _s.c.value).where(
        _s.c.generation_id.in_(list(ids))
    )
    for generation_id, metric, value in session.exec(query).all():
        out.setdefault(int(generation_id), {})[str(metric)] = value
    return out


def pair_page(
    session: Session,
    experiment_id: int,
    config_a: str,
    config_b: str,
    filters: Filters = Filters(),
    *,
    sort: str = "case",
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """Two configs' generations of the same case and sample, one row per case, full
    outputs. ``filters.metric`` names the score whose difference A − B is shown and
    sorted by (``sort``: "diff" largest A − B first, "-diff" smallest first, "|diff|"
    largest disagreement first; which side is ahead depends on the metric's direction);
    its bounds apply to that difference."""
    a, b, c = _g.alias("ga"), _g.alias("gb"), _c
    joined = a.join(
        b,
        and_(
            b.c.experiment_id == a.c.experiment_id,
            b.c.case_uid == a.c.case_uid,
            b.c.sample_index == a.c.sample_index,
            b.c.config_hash == config_b,
        ),
    ).join(c, c.c.uid == a.c.case_uid)
    plain = Filters(case=filters.case, group=filters.group)
    columns = [a.c.id.label("id_a"), b.c.id.label("id_b"), c.c.case_id, a.c.sample_index]
    if filters.metric:
        columns += [
            _score_of(a, filters.metric).label("score_a"),
            _score_of(b, filters.metric).label("score_b"),
        ]
    inner = select(*columns).select_from(joined)
    inner = inner.where(a.c.experiment_id == experiment_id, a.c.config_hash == config_a)
    inner = inner.where(*_conditions(session, a, c, plain))
    if filters.failed is not None:
        either = (a.c.status == "failed") | (b.c.status == "failed")
        inner = inner.where(either if filters.failed else ~either)
    if filters.truncated is not None:
        either = a.c.truncated.is_(True) | b.c.truncated.is_(True)
        inner = inner.where(either if filters.truncated else ~either)
    # OFFSET 0 keeps PostgreSQL from pulling the subquery up, which would look each
    # score up again for every use of the difference below
    pairs = inner.offset(0).subquery("pairs")
    query = select(pairs.c.id_a, pairs.c.id_b)
    diff = None
    if filters.metric:
        diff = pairs.c.score_a - pairs.c.score_b
        if filters.min_value is not None:
            query = query.where(diff >= filters.min_value)
        if filters.max_value is not None:
            query = query.where(diff <= filters.max_value)
    total, exact = _count(session, query)
    order: list[Any] = [pairs.c.case_id, pairs.c.sample_index]
    if diff is not None and sort in ("diff", "-diff", "|diff|"):
        key = {"diff": -diff, "-diff": diff, "|diff|": -func.abs(diff)}[sort]
        order = [diff.is_(None), key, *order]
    page = max(1, page)
    ids = session.exec(
        query.order_by(*order).limit(per_page + 1).offset((page - 1) * per_page)
    ).all()
    more = len(ids) > per_page
    ids = ids[:per_page]
    full = full_rows(session, [i for pair in ids for i in pair])
    rows = []
    for id_a, id_b in ids:
        left, right = full[int(id_a)], full[int(id_b)]
        metrics = dict.fromkeys([*left["scores"], *right["scores"]])
        diffs = {
            m: left["scores"][m] - right["scores"][m]
            for m in metrics
            if left["scores"].get(m) is not None and right["scores"].get(m) is not None
        }
        rows.append(
            {
                "case_id": left["case_id"],
                "group": left["group"],
                "input": left["input_text"],
                "references": list(left["references"] or []),
                "sample_index": left["sample_index"],
                "a": left,
                "b": right,
                "diff": diffs,
            }
        )
    return Page(rows, total, page, per_page, exact, more)


def full_rows(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    g, c = _g, _c
    query = (
        select(g, c.c.case_id, c.c.group, c.c.input_text, c.c.references)
        .select_from(g.join(c, c.c.uid == g.c.case_uid))
        .where(g.c.id.in_(list(ids)))
    )
    rows = {int(r.id): dict(r._mapping) for r in session.exec(query)}
    scores = _scores(session, list(ids))
    return {i: row | {"scores": scores.get(i, {})} for i, row in rows.items()}


def case_generations(session: Session, experiment_id: int, case_id: str) -> list[dict[str, Any]]:
    """Every generation of one case (all configs and samples), full outputs, in sweep
    order of the configs."""
    g, c = _g, _c
    order = (
        select(ExperimentConfig.position)
        .where(
            ExperimentConfig.experiment_id == experiment_id,
            ExperimentConfig.config_hash == g.c.config_hash,
        )
        .scalar_subquery()
    )
    uids = select(c.c.uid).where(c.c.case_id == case_id)  # then by the index on case_uid
    ids = session.exec(
        select(g.c.id)
        .where(
            g.c.experiment_id == experiment_id,
            g.c.case_uid.in_(uids),
            g.c.config_hash.in_(own_configs(experiment_id)),
        )
        .order_by(order, g.c.sample_index)
    ).all()
    full = full_rows(session, [int(i[0]) for i in ids])
    return [full[int(i[0])] for i in ids]
