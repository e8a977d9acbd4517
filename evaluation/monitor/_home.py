"""What the monitor's home page shows, each read from stored rows only: runs going on
now (``run_live``), recent runs, stats per task type and pipeline kind, every series
with its points, performance over time, configs compared across a series' runs and
host health (``run_summaries``, ``models``, ``aggregates``). None of it calls a host."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlmodel import Session

from evaluation.labels import distinguishing_labels, settings_line
from evaluation.monitor._summary import refresh_summaries
from evaluation.run._slot_waits import held_by_words
from evaluation.series import series_names
from evaluation.series.schema import CalibratedNight
from evaluation.spec import DEFAULT_NUM_PREDICT
from evaluation.storage.models import (
    Aggregate,
    ConfigRow,
    Experiment,
    ExperimentRun,
    ModelRow,
    RunLive,
    RunSummary,
)
from evaluation.storage.repository import stored_experiment
from evaluation.storage.runs import experiment_status, in_utc, starting_runs, starting_words
from evaluation.wording import counted

RECENT = 30
SERIES = 30  # series shown, most recently run first
POINTS = 20  # points per series' sparkline
OVER_TIME = 100  # runs in the performance charts
ACROSS = 8  # runs of a series in the config comparison


@dataclass(frozen=True)
class Home:
    running: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    stats: dict[str, list[dict[str, Any]]]  # "task type" / "pipeline" -> rows
    series: list[dict[str, Any]]
    over_time: list[dict[str, Any]]
    across: dict[str, Any] | None
    hosts: list[dict[str, Any]]
    experiments: int
    catching_up: int = 0  # summaries counted for this page (an older database)
    series_names: list[str] = field(default_factory=list)


class HomeCache:
    """The home page's sections that read the stored runs (everything but what runs now
    and the hosts), kept while the database's runs are unchanged: the experiments' count,
    last id and last update and the summaries' count (``fingerprint``). A page polled or
    reloaded while nothing ended reads four figures instead of 10,000 rows."""

    def __init__(self, size: int = 16) -> None:
        self._kept: dict[tuple, Home] = {}
        self._size = size

    def get(self, key: tuple) -> Home | None:
        return self._kept.get(key)

    def put(self, key: tuple, shown: Home) -> None:
        if len(self._kept) >= self._size:
            self._kept.pop(next(iter(self._kept)))
        self._kept[key] = shown


def fingerprint(session: Session) -> tuple:
    e = session.exec(
        select(func.count(), func.max(Experiment.id), func.max(Experiment.updated_at))
    ).one()
    n = session.exec(select(func.count()).select_from(RunSummary)).one()[0]
    return (int(e[0]), e[1], str(e[2]), int(n))


def home(session: Session, series: str | None = None, cache: HomeCache | None = None) -> Home:
    """Everything on the home page; ``series`` picks the series whose configs are
    compared across runs (default: the most recently run one). With ``cache``, the
    sections over the stored runs are read again only when the runs changed."""
    running, ended = _running_and_ended(session)
    caught = refresh_summaries(session, ended=list(ended))
    session.flush()
    starting = {r["name"]: r for r in running if r["stage"] == "starting"}
    key = (
        (series, tuple(sorted(ended.items())), tuple(sorted(starting)), *fingerprint(session))
        if cache is not None and not caught
        else None
    )
    kept = cache.get(key) if key is not None else None
    if kept is None:
        listed = series_points(session)
        chosen = series or (listed[0]["series"] if listed else None)
        kept = Home(
            running=[],
            recent=recent_runs(session, ended=ended, starting=starting),
            stats=stats(
                session, ended=ended, starting={n: f["task_type"] for n, f in starting.items()}
            ),
            series=listed,
            over_time=over_time(session),
            across=configs_across(session, chosen) if chosen else None,
            hosts=[],
            experiments=int(session.exec(select(func.count()).select_from(Experiment)).one()[0]),
            series_names=[s["series"] for s in listed],
        )
        if key is not None:
            cache.put(key, kept)
    return replace(kept, running=running, hosts=host_health(session, running), catching_up=caught)


def running_runs(session: Session) -> list[dict[str, Any]]:
    """Every experiment running now (its process alive where that can be checked) with
    its live row, then those still starting (``starting_facts``)."""
    return _running_and_ended(session)[0]


def _running_and_ended(session: Session) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The running experiments (``running_runs``) and, of those stored as running, the
    ones ``experiment_status`` finds ended (crashed, or ended without saying so) -> the
    status it gives: the home page's sections show that status, as status/api/metrics do."""
    starting = starting_runs(session)
    claimed = [run.experiment for run in starting]
    rows = session.exec(
        select(Experiment, RunLive)
        .outerjoin(RunLive, RunLive.experiment == Experiment.name)
        .where(Experiment.status == "running", Experiment.name.not_in(claimed))
        .order_by(Experiment.id)
    ).all()
    out, ended = [], {}
    for experiment, live in rows:
        state = experiment_status(session, experiment)
        if state.status != "running":
            ended[experiment.name] = state.status
            continue
        out.append(live_facts(experiment, live, state.run))
    out += [starting_facts(run, stored_experiment(session, run.experiment)) for run in starting]
    return out, ended


def starting_facts(run: ExperimentRun, experiment: Experiment | None) -> dict[str, Any]:
    """A run that holds its experiment's claim (a second run is refused) but has not
    begun its flow (Prefect starting: ~20 s under load) or has no live row of its own
    yet, as ``live_facts`` shapes a running one: stage "starting", nothing done, and in
    ``starting`` which process holds the claim since when (``holder_words``)."""
    return {
        "name": run.experiment,
        "task_type": experiment.task_type if experiment else run.task_type or "",
        "simulated": experiment.simulated if experiment else bool(run.simulated),
        "stage": "starting",
        "done": 0,
        "total": 0,
        "failed": 0,
        "per_s": None,
        "eta_s": None,
        "in_flight": {},
        "waiting": {},
        "slots": {},
        "failures": {},
        "gpu": [],
        "updated_at": _iso(run.started_at),
        "updated_clock": _utc_clock(run.started_at),
        "started_at": _iso(run.started_at),
        "flow_run_id": run.flow_run_id,
        "percent": 0.0,
        "eta_clock": None,
        "starting": starting_words(run),
    }


def live_facts(
    experiment: Experiment, live: RunLive | None, run: ExperimentRun | None
) -> dict[str, Any]:
    """A running experiment as the pages and `evalflow status` show it."""
    facts: dict[str, Any] = {
        "name": experiment.name,
        "task_type": experiment.task_type,
        "simulated": experiment.simulated,
        "stage": live.stage if live else "load",
        "done": live.done if live else 0,
        "total": live.total if live else 0,
        "failed": live.failed if live else 0,
        "per_s": live.per_s if live else None,
        "eta_s": live.eta_s if live else None,
        "in_flight": dict(live.in_flight or {}) if live else {},
        "slots": dict(live.slots or {}) if live else {},
        "waiting": {},
        "failures": dict(live.failures or {}) if live else {},
        "gpu": list(live.gpu or []) if live else [],
        "updated_at": _iso(live.updated_at if live else experiment.updated_at),
        "updated_clock": _utc_clock(live.updated_at if live else experiment.updated_at),
        "started_at": _iso(run.started_at if run else experiment.created_at),
        "flow_run_id": run.flow_run_id if run else None,
    }
    if live is not None and live.stage == "generate":  # lanes wait in no other stage
        facts["waiting"] = waiting_facts(live.waiting or {}, facts["slots"])
    total = facts["total"]
    facts["percent"] = round(100.0 * facts["done"] / total, 1) if total else 0.0
    facts["eta_clock"] = eta_clock(live.updated_at if live else None, facts["eta_s"])
    return facts


def waiting_facts(
    waiting: Mapping[str, Mapping[str, Any]], slots: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """The hosts whose lanes wait for a slot, as the live row has them, each with its
    ``words`` (e.g. "2 lanes waiting since 17:02:11 UTC (held by another run: ...)")."""
    out = {}
    for host, wait in waiting.items():
        since = in_utc(datetime.fromisoformat(wait["since"]))
        held_by = [tuple(holder) for holder in wait.get("held_by") or []]
        words = (
            f"{counted(wait['lanes'], 'lane')} waiting since {since:%H:%M:%S} UTC "
            f"({held_by_words(held_by, slots.get(host))})"
        )
        out[host] = dict(wait) | {"words": words}
    return out


def eta_clock(updated_at: datetime | None, eta_s: float | None) -> str | None:
    """When the run should end: the ETA given at ``updated_at`` as a time of day
    (``23:43:20 UTC``; with its date a day or more ahead), which stays true while the
    row does not change, where a duration would freeze."""
    if updated_at is None or eta_s is None:
        return None
    end = in_utc(updated_at) + timedelta(seconds=eta_s)
    return f"{end:%Y-%m-%d %H:%M} UTC" if eta_s >= 86400 else f"{end:%H:%M:%S} UTC"


def _utc_clock(value: datetime | None) -> str | None:
    """When the live row was written, for people: ``2026-11-27 06:15:51 UTC`` (the page
    wrote ``updated_at``'s ISO form and then "UTC": ``06:15:51+00:00 UTC``)."""
    return f"{in_utc(value):%Y-%m-%d %H:%M:%S} UTC" if value is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


_SUMMARY_COLUMNS = tuple(
    c
    for c in RunSummary.__table__.columns
    if c.name not in ("experiment_id", "status", "task_type")
)


def _summary_rows(session: Session, statement) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.exec(statement).all()]


def _with_summary(*where, joined: bool = False):
    """Experiments' facts beside their summary's columns (plain rows, no ORM objects: a
    page reads a hundred of them)."""
    statement = select(
        Experiment.id,
        Experiment.name,
        Experiment.status,
        Experiment.task_type,
        Experiment.simulated,
        Experiment.created_at,
        *_SUMMARY_COLUMNS,
    )
    join = RunSummary.experiment_id == Experiment.id
    statement = (
        statement.join(RunSummary, join) if joined else statement.outerjoin(RunSummary, join)
    )
    return statement.where(*where)


def recent_runs(
    session: Session,
    limit: int = RECENT,
    ended: Mapping[str, str] | None = None,
    starting: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The last ``limit`` experiments, newest first, with their summaries; ``ended``
    (name -> status) corrects those stored as running that are not; ``starting`` (name ->
    ``starting_facts``) those whose run is starting, which shows them as "running now"
    does, the ones not stored yet first; ``share``: "calibrated: 8 of 36 cases" for a run
    at the calibrated level, whose best mean is of those cases."""
    rows = _summary_rows(session, _with_summary().order_by(Experiment.id.desc()).limit(limit))
    shares = _calibrated_shares(session, [r["name"] for r in rows])
    series = _unsummarised_series(session, [r["name"] for r in rows if r["series"] is None])
    starting = starting or {}
    for row in rows:
        name = row["name"]
        row["status"] = "starting" if name in starting else (ended or {}).get(name, row["status"])
        row["share"] = shares.get(row["name"], "")
        row["series"] = row["series"] if row["series"] is not None else series[row["name"]]
    stored = {row["name"] for row in rows} | _stored(session, list(starting))
    new = [_unstored(facts) for name, facts in starting.items() if name not in stored]
    return (new + rows)[:limit]


def _stored(session: Session, names: list[str]) -> set[str]:
    if not names:
        return set()
    statement = select(Experiment.name).where(Experiment.name.in_(names))
    return set(session.exec(statement).scalars())


def _unstored(facts: Mapping[str, Any]) -> dict[str, Any]:
    """A starting run's row in the recent runs before its flow stores its experiment:
    its name and status, nothing counted yet."""
    return {
        "name": facts["name"],
        "status": "starting",
        "series": "",
        "task_type": facts["task_type"],
        "pipeline": None,
        "simulated": facts["simulated"],
        "configs": None,
        "duration_s": None,
        "generations": None,
        "failed": None,
        "failures": {},
        "best_config": "",
        "best_mean": None,
        "metric": "",
        "share": "",
        "verdict": "",
    }


def _unsummarised_series(session: Session, experiments: list[str]) -> dict[str, str]:
    """The series of the experiments with no summary yet (stored as a run ends: a first
    run still going): known from its start, as for a finished run (an empty cell said
    nothing)."""
    if not experiments:
        return {}
    statement = select(Experiment).where(Experiment.name.in_(experiments))
    return series_names(session, list(session.exec(statement).scalars()))


def _calibrated_shares(session: Session, experiments: list[str]) -> dict[str, str]:
    """Experiment name -> "calibrated: 8 of 36 cases" for those run at the calibrated
    level (their best mean is of those cases only)."""
    return {
        name: f"calibrated: {len(ids)} of {total} cases"
        for name, ids, total in session.exec(
            select(
                CalibratedNight.experiment, CalibratedNight.case_ids, CalibratedNight.suite_cases
            ).where(CalibratedNight.experiment.in_(experiments))
        ).all()
    }


def over_time(session: Session, limit: int = OVER_TIME) -> list[dict[str, Any]]:
    """The last ``limit`` finished runs, oldest first: duration, throughput, tokens and
    the headline metric's best mean, per run."""
    rows = _summary_rows(
        session,
        _with_summary(RunSummary.generations > 0, joined=True)
        .order_by(Experiment.id.desc())
        .limit(limit),
    )
    for r in rows:
        d = r.get("duration_s")
        r["throughput"] = r["generations"] / d if d else None
    return rows[::-1]


FINISHED = ("completed", "failed", "interrupted", "cancelled")


def stats(
    session: Session,
    ended: Mapping[str, str] | None = None,
    starting: Mapping[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per task type and per pipeline kind: runs, active now (not those of ``ended``,
    stored as running but not; those ``starting``, name -> the task type its claim
    names, stored as they last ended, and, by task type only, those not stored yet: their
    pipeline kind is known once stored), average duration of finished runs and the share
    of finished runs that completed (one grouped query)."""
    starting = starting or {}
    restarted = Experiment.name.in_(list(starting))
    running = (Experiment.status == "running") & Experiment.name.not_in(list(ended or {}))
    active = running | restarted
    finished = Experiment.status.in_(FINISHED) & ~restarted
    statement = (
        select(
            Experiment.task_type,
            RunSummary.pipeline,
            func.count().label("runs"),
            func.sum(case((active, 1), else_=0)).label("active"),
            func.sum(case((finished, 1), else_=0)).label("finished"),
            func.sum(case((Experiment.status == "completed", 1), else_=0)).label("completed"),
            func.sum(case((finished, RunSummary.duration_s), else_=None)).label("seconds"),
            func.count(case((finished, RunSummary.duration_s), else_=None)).label("timed"),
        )
        .select_from(Experiment)
        .outerjoin(RunSummary, RunSummary.experiment_id == Experiment.id)
        .group_by(Experiment.task_type, RunSummary.pipeline)
    )
    groups: dict[str, dict[str, list[float]]] = {"task type": {}, "pipeline": {}}
    for r in session.exec(statement).all():
        figures = [r.runs, r.active or 0, r.finished or 0, r.completed or 0,
                   r.seconds or 0.0, r.timed or 0]  # fmt: skip
        for grouping, key in (("task type", r.task_type), ("pipeline", r.pipeline or "single")):
            held = groups[grouping].setdefault(key, [0] * 6)
            groups[grouping][key] = [a + b for a, b in zip(held, figures, strict=True)]
    stored = _stored(session, list(starting))
    for task_type in (t for n, t in starting.items() if t and n not in stored):
        held = groups["task type"].setdefault(task_type, [0] * 6)
        held[0], held[1] = held[0] + 1, held[1] + 1  # a run, active
    return {
        grouping: [
            {
                "key": key,
                "runs": int(runs),
                "active": int(active),
                "mean_duration_s": seconds / timed if timed else None,
                "success": completed / done if done else None,
            }
            for key, (runs, active, done, completed, seconds, timed) in sorted(rows.items())
        ]
        for grouping, rows in groups.items()
    }


def series_points(
    session: Session, limit: int = SERIES, points: int = POINTS
) -> list[dict[str, Any]]:
    """The ``limit`` most recently run series, each with its last ``points`` runs
    (oldest first): the headline metric's best mean and the mean latency; a run with
    fewer than half the cases per config of the fullest shown (a smoke or subset level)
    is ``partial``: its ``judged_value`` is None, a gap in the sparkline, not a dip."""
    s = RunSummary
    latest = (
        select(s.series, func.max(s.experiment_id).label("last"), func.count().label("runs"))
        .where(s.series != "")
        .group_by(s.series)
        .order_by(func.max(s.experiment_id).desc())
        .limit(limit)
    )
    listed = session.exec(latest).all()
    if not listed:
        return []
    ranked = (
        select(
            s.series,
            s.experiment_id,
            s.metric,
            s.best_mean,
            s.mean_latency_s,
            s.status,
            s.generations,
            s.configs,
            func.row_number()
            .over(partition_by=s.series, order_by=s.experiment_id.desc())
            .label("rank"),
        )
        .where(s.series.in_([r.series for r in listed]))
        .subquery()
    )
    rows = session.exec(
        select(ranked, Experiment.name, Experiment.simulated)
        .join(Experiment, Experiment.id == ranked.c.experiment_id)
        .where(ranked.c.rank <= points)
        .order_by(ranked.c.experiment_id)
    ).all()
    by_series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_series[r.series].append(
            {
                "experiment": r.name,
                "metric": r.metric,
                "value": r.best_mean,
                "latency_s": r.mean_latency_s,
                "status": r.status,
                "cases": r.generations / r.configs if r.configs else 0.0,
                "simulated": r.simulated,
            }
        )
    shares = _calibrated_shares(session, [r.name for r in rows])
    for shown in by_series.values():
        for p in shown:
            p["share"] = shares.get(p["experiment"], "")
    for shown in by_series.values():  # as the watch: a smoke/subset night is not judged
        fullest = max(p["cases"] for p in shown)
        for p in shown:
            p["partial"] = p["cases"] < fullest / 2
            p["judged_value"] = None if p["partial"] else p["value"]
    return [
        {
            "series": r.series,
            "runs": int(r.runs),
            "points": by_series[r.series],
            "metric": next((p["metric"] for p in by_series[r.series][::-1] if p["metric"]), ""),
        }
        for r in listed
    ]


def configs_across(session: Session, series: str, runs: int = ACROSS) -> dict[str, Any] | None:
    """The configs of ``series``' last ``runs`` runs on their headline metric: one row
    per config label, one column per run (oldest first). Configs are named as the
    leaderboards name them (``distinguishing_labels`` over the table's labels, the
    settings they all share said once: ``settings_line``): the table said "gemma3-270m
    t=0 n=24 seed=7" where `show` said "gemma3-270m t=0" over "Every config:
    num_predict=24 seed=7"."""
    s = RunSummary
    picked = session.exec(
        select(s.experiment_id, s.metric, Experiment.name)
        .join(Experiment, Experiment.id == s.experiment_id)
        .where(s.series == series)
        .order_by(s.experiment_id.desc())
        .limit(runs)
    ).all()[::-1]
    if not picked:
        return None
    metric = next((p.metric for p in picked[::-1] if p.metric), "")
    cells: dict[str, dict[str, float | None]] = defaultdict(dict)
    for r in session.exec(
        select(Aggregate.experiment_id, Aggregate.mean, ConfigRow.label, ConfigRow.hash)
        .join(ConfigRow, ConfigRow.hash == Aggregate.config_hash)
        .where(Aggregate.experiment_id.in_([p.experiment_id for p in picked]))
        .where(Aggregate.metric == metric)
    ).all():
        cells[r.label or r.hash[:8]][r.experiment_id] = r.mean
    short = distinguishing_labels(list(cells)) if cells else {}
    return {
        "series": series,
        "metric": metric,
        "runs": [{"id": p.experiment_id, "name": p.name} for p in picked],
        "configs": sorted(
            (
                {"label": short[label], "cells": [values.get(p.experiment_id) for p in picked]}
                for label, values in cells.items()
            ),
            key=lambda row: row["label"],
        ),
        "settings_line": settings_line(list(cells), DEFAULT_NUM_PREDICT) if cells else "",
    }


def host_health(session: Session, running: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every host seen, from stored facts only: when its models were last listed (the
    runs' preflight), its generations and failures over the recent runs, what runs on it
    now and its GPU readings there. ``health``: ok, degraded (a tenth or more of its
    recent generations failed), failing (half or more) or unknown (none recent);
    ``simulated``: every run seen on it (recent or running) was of the simulated backend."""
    hosts: dict[str, dict[str, Any]] = {}

    def host(name: str) -> dict[str, Any]:
        return hosts.setdefault(
            name,
            {
                "host": name,
                "last_seen": None,
                "models": 0,
                "generations": 0,
                "failed": 0,
                "in_flight": 0,
                "slots": None,
                "running": [],
                "gpu": [],
            },
        )

    for row in session.exec(select(ModelRow.hosts, ModelRow.last_seen)).all():
        for name in row.hosts or []:
            h = host(str(name))
            h["models"] += 1
            seen = row.last_seen
            if h["last_seen"] is None or (seen is not None and _naive(seen) > h["last_seen"]):
                h["last_seen"] = _naive(seen)
    recent = session.exec(
        select(RunSummary.hosts, Experiment.simulated)
        .join(Experiment, Experiment.id == RunSummary.experiment_id)
        .order_by(RunSummary.experiment_id.desc())
        .limit(RECENT)
    ).all()
    simulated: dict[str, set[bool]] = defaultdict(set)  # host -> its runs' marks
    for by_host, run_simulated in recent:
        for name, (n, failed) in (by_host or {}).items():
            h = host(name)
            h["generations"] += n
            h["failed"] += failed
            simulated[name].add(bool(run_simulated))
    for run in running:
        for name, n in run["in_flight"].items():
            h = host(name)
            h["in_flight"] += n
            h["slots"] = run["slots"].get(name, h["slots"])
        for name in {*run["in_flight"], *run["slots"]}:
            host(name)["running"].append(run["name"])
            simulated[name].add(bool(run["simulated"]))
        for reading in run["gpu"]:
            if reading.get("host"):
                host(str(reading["host"]))["gpu"].append(reading)
    for h in hosts.values():
        n = h["generations"]
        share = h["failed"] / n if n else None
        h["failure_share"] = share
        h["health"] = _health(share)
        h["simulated"] = simulated[h["host"]] == {True}
    return sorted(hosts.values(), key=lambda h: h["host"])


def _health(failure_share: float | None) -> str:
    if failure_share is None:
        return "unknown"
    if failure_share >= 0.5:
        return "failing"
    return "degraded" if failure_share >= 0.1 else "ok"


def _naive(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=None) if value is not None else None
