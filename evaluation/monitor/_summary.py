"""Each run in a few figures (``run_summaries``), for the monitor's recent runs, stats,
series and charts: counted from the run's generations once, with grouped queries over a
batch of experiments, and kept while the experiment's status and ``updated_at`` are the
ones it was counted at, by this way of counting (``SUMMARY_VERSION``). A run that ends
stores its own (``store_summary``); the monitor counts the missing or stale ones of an
older database a batch per page (``refresh_summaries``), so no page ever reads every
generation."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from evaluation.labels import distinguishing_labels
from evaluation.monitor._live import failure_reason
from evaluation.series import series_of_experiment
from evaluation.storage.db import insert_ignoring_conflicts, refused_write
from evaluation.storage.models import (
    Aggregate,
    ComparisonRun,
    ConfigPipeline,
    ConfigRow,
    Experiment,
    ExperimentConfig,
    ExperimentRun,
    Generation,
    RunSummary,
)
from evaluation.storage.runs import run_seconds

#: Raised when a summary's figures are counted otherwise: a summary stored by another
#: way of counting is stale and counted again (2: the best config is the leaderboard's
#: first, 0f6ddb3; older summaries named the first strictly higher mean of all configs;
#: 3: it is named by its short label, as `show` names it, not by its full one).
SUMMARY_VERSION = 3
BATCH = 500  # experiments counted per page view at most (an old database catches up)
_COLUMNS = tuple(c.name for c in RunSummary.__table__.columns if c.name != "experiment_id")


def stale_ids(
    session: Session,
    limit: int = BATCH,
    *,
    only: Sequence[int] | None = None,
    ended: Sequence[str] = (),
) -> list[int]:
    """Experiments not running (of ``only``, where given) whose summary is missing,
    older than the experiment or counted another way (``SUMMARY_VERSION``), newest
    first. ``ended``: the names of experiments stored as running whose run has ended
    (crashed: nobody recorded its end), counted as the others are."""
    s = RunSummary
    statement = (
        select(Experiment.id)
        .outerjoin(s, s.experiment_id == Experiment.id)
        .where(or_(Experiment.status != "running", Experiment.name.in_(list(ended))))
        .where(
            or_(
                s.experiment_id.is_(None),
                s.status != Experiment.status,
                s.updated_at != Experiment.updated_at,
                s.counted_by != SUMMARY_VERSION,
            )
        )
        .order_by(Experiment.id.desc())
        .limit(limit)
    )
    if only is not None:
        statement = statement.where(Experiment.id.in_(list(only)))
    return [int(i) for i in session.exec(statement).scalars()]


def refresh_summaries(session: Session, limit: int = BATCH, ended: Sequence[str] = ()) -> int:
    """Count the summaries that are missing or stale, at most ``limit``, of the runs
    ended (``ended``: stored as running, their process gone: a crashed run's 144 stored
    generations read `–` on the home page, newcomers' M11) too; returns how many were
    stored. A database that takes no write (a teammate's read-only copy) stores none, and
    its pages are read from the summaries it holds: the home page answered HTTP 500 with
    the INSERT's traceback."""
    ids = stale_ids(session, limit, ended=ended)
    if not ids:
        return 0
    try:
        with session.begin_nested():  # a refused write leaves the reader's transaction
            store_summaries(session, ids)
    except DBAPIError as exc:
        if not refused_write(exc):
            raise
        return 0  # a read-only copy: its pages read the summaries it holds (recheck R1)
    return len(ids)


def store_summary(session: Session, experiment_id: int) -> None:
    """Count and store one experiment's summary (a run calls it as it ends)."""
    store_summaries(session, [experiment_id])


def store_summaries(session: Session, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), BATCH):
        rows = summarize(session, ids[start : start + BATCH])
        insert_ignoring_conflicts(session, RunSummary, rows, update_columns=_COLUMNS)


def summarize(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The summary rows of experiments ``ids`` (grouped queries, one pass each)."""
    experiments = session.exec(select(Experiment).where(Experiment.id.in_(ids))).scalars().all()
    if not experiments:
        return []
    g = Generation
    counts = {
        r.experiment_id: r
        for r in session.exec(
            select(
                g.experiment_id,
                func.count().label("n"),
                func.sum(g.eval_count).label("tokens"),
                func.avg(g.latency_s).label("latency"),
                func.min(g.created_at).label("first"),
                func.max(g.created_at).label("last"),
            )
            .where(g.experiment_id.in_(ids))
            .group_by(g.experiment_id)
        ).all()
    }
    failures: dict[int, dict[str, int]] = defaultdict(dict)
    for r in session.exec(
        select(g.experiment_id, g.error, func.count().label("n"))
        .where(g.experiment_id.in_(ids), g.status == "failed")
        .group_by(g.experiment_id, g.error)
    ).all():
        reasons = failures[r.experiment_id]
        reason = failure_reason(r.error)
        reasons[reason] = reasons.get(reason, 0) + int(r.n)
    hosts: dict[int, dict[str, list[int]]] = defaultdict(dict)
    for r in session.exec(
        select(g.experiment_id, g.host, g.status, func.count().label("n"))
        .where(g.experiment_id.in_(ids))
        .group_by(g.experiment_id, g.host, g.status)
    ).all():
        pair = hosts[r.experiment_id].setdefault(r.host or "?", [0, 0])
        pair[0] += int(r.n)
        pair[1] += int(r.n) if r.status == "failed" else 0
    configs: dict[int, int] = dict(
        session.exec(
            select(ExperimentConfig.experiment_id, func.count())
            .where(ExperimentConfig.experiment_id.in_(ids))
            .group_by(ExperimentConfig.experiment_id)
        ).all()
    )
    pipelines: dict[int, set[str]] = defaultdict(set)
    for experiment_id, pipeline in session.exec(
        select(ExperimentConfig.experiment_id, ConfigPipeline.pipeline)
        .join(ConfigPipeline, ConfigPipeline.config_hash == ExperimentConfig.config_hash)
        .where(ExperimentConfig.experiment_id.in_(ids))
        .distinct()
    ).all():
        pipelines[experiment_id].add(pipeline)
    runs = {
        r.experiment: r
        for r in session.exec(
            select(ExperimentRun).where(ExperimentRun.experiment.in_([e.name for e in experiments]))
        ).scalars()
    }
    best = _best(session, experiments)
    verdicts = _verdicts(session, experiments)
    rows = []
    for e in experiments:
        c = counts.get(e.id)
        n = int(c.n) if c else 0
        run = runs.get(e.name)
        started = run.started_at if run else (c.first if c else None)
        ended = run.ended_at if run else (c.last if c else None)
        reasons = failures.get(e.id, {})
        metric, label, mean = best.get(e.id, ("", "", None))
        kinds = sorted(pipelines.get(e.id, ())) or ["single"]
        rows.append(
            {
                "experiment_id": e.id,
                "status": e.status,
                "updated_at": e.updated_at,
                "counted_by": SUMMARY_VERSION,
                "series": series_of_experiment(session, e),
                "task_type": e.task_type,
                "pipeline": "+".join(kinds),
                "configs": configs.get(e.id, 0),
                "generations": n,
                "failed": sum(reasons.values()),
                "failures": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:10]),
                "hosts": hosts.get(e.id, {}),
                "tokens": int(c.tokens or 0) if c else 0,
                "mean_latency_s": float(c.latency) if c and c.latency is not None else None,
                "started_at": started,
                "ended_at": ended,
                "duration_s": _duration(run, started, ended),
                "metric": metric,
                "best_config": label,
                "best_mean": mean,
                "verdict": verdicts.get(e.id, ""),
            }
        )
    return rows


def _duration(
    run: ExperimentRun | None, started: datetime | None, ended: datetime | None
) -> float | None:
    """The seconds the experiment ran: its last run's and the earlier runs' it resumed
    (a run resumed twice said 4 min 51 s, its last session's, of 11 min)."""
    last = run_seconds(started, ended)
    return None if last is None else last + (run.earlier_s if run else 0.0)


def _best(session: Session, experiments: Sequence[Experiment]) -> dict[int, tuple]:
    """Per experiment: its headline metric and the config its leaderboard ranks first
    (its label as `show` gives it, mean): the leaderboard's rows and order
    (``rows_best_first``: ties by median latency, then label), of the configs its last
    spec has (not those it dropped)."""
    from evaluation.compare._leaderboard import rows_best_first

    listed = {e.id: list(e.metrics) for e in experiments if e.metrics}
    if not listed:
        return {}
    a, ec = Aggregate, ExperimentConfig
    wanted = {m for ms in listed.values() for m in ms} | {"latency_p50_s"}
    boards: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in session.exec(
        select(a.experiment_id, a.config_hash, a.metric, a.mean, ConfigRow.label)
        .join(ConfigRow, ConfigRow.hash == a.config_hash)
        .join(ec, (ec.experiment_id == a.experiment_id) & (ec.config_hash == a.config_hash))
        .where(a.experiment_id.in_(list(listed)), a.metric.in_(wanted))
    ).all():
        row = boards[r.experiment_id].setdefault(
            r.config_hash, {"config": r.config_hash, "label": r.label or r.config_hash[:8]}
        )
        row[r.metric] = r.mean
    best: dict[int, tuple] = {}
    for i, metrics in listed.items():
        rows = list(boards.get(i, {}).values())
        present = [m for m in metrics if any(m in row for row in rows)]
        metric = present[0] if present else metrics[0]
        top = rows_best_first(rows, metric)[:1] if present else []
        mean = top[0].get(metric) if top else None
        scored = mean is not None and not math.isnan(mean)
        shown = distinguishing_labels([row["label"] for row in rows]) if top else {}
        best[i] = (metric, shown[top[0]["label"]], float(mean)) if scored else (metric, "", None)
    return best


def _verdicts(session: Session, experiments: Sequence[Experiment]) -> dict[int, str]:
    """The comparison's verdict on each experiment's headline metric, where stored."""
    by_name = {e.name: e for e in experiments}
    out = {}
    for run in session.exec(
        select(ComparisonRun).where(ComparisonRun.run_label.in_(list(by_name)))
    ).scalars():
        e = by_name[run.run_label]
        headline = (e.metrics or [""])[0]
        for v in run.verdicts or []:
            if v.get("metric") == headline:
                out[e.id] = str(v.get("verdict") or "")
    return out
