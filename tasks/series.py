"""Recording a run's place in its series and what it really ran with."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.run._sweep import Sweep
from evaluation.series import (
    ESCALATE_SHARE,
    WatchSettings,
    record_calibrated_night,
    record_run,
    refuse_another_series,
    refuse_another_spec,
    suite_digest,
    what_ran,
)
from evaluation.storage.db import session_scope
from tasks.host_pool import HostPool


def keep_series(
    engine: Engine, experiment: str, series: str | None, sweep: Sweep, *, named: bool
) -> None:
    """Refuse a rerun that names another series than its experiment belongs to, or runs
    another spec than it was run from, before the run registers (``refuse_another_series``,
    ``refuse_another_spec``; `run` checked both before its claim)."""
    with session_scope(engine) as session:
        refuse_another_series(session, experiment, series)
        refuse_another_spec(session, experiment, sweep.spec.name, sweep.suite.name, named=named)


def join_series(engine: Engine, experiment: str, sweep: Sweep, series: str | None) -> None:
    """Record the run's series as it starts (``series``, else the spec's name), so a run
    still running or interrupted is in the series it joined, and a resume without
    ``--series`` keeps it; what it ran with follows after generation."""
    _record(engine, experiment, sweep, series, models=[])


@task(name="record-what-ran", cache_policy=NO_CACHE)
async def record_what_ran(
    engine: Engine, experiment: str, sweep: Sweep, pool: HostPool, series: str | None
) -> None:
    """Ask each host what its models were (digest, quantisation, server version, context
    length) and store it with the run's series (``series``, else the spec's name)."""
    found = {h: c.models for h, c in pool.checks.items() if c.up and c.models}
    models = await what_ran(pool.backends, found)
    _record(engine, experiment, sweep, series, models=models)


def _record(
    engine: Engine, experiment: str, sweep: Sweep, series: str | None, models: list
) -> None:
    """The run's series row: ``series``, else the spec's name; its suite and models."""
    with session_scope(engine) as session:
        record_run(
            session,
            experiment,
            series=series or sweep.spec.name,
            explicit=series is not None,
            suite=sweep.suite.name,
            suite_digest=suite_digest(sweep.suite),
            models=models,
        )


def record_calibrated(
    engine: Engine,
    experiment: str,
    cases: list,
    suite_cases: int,
    *,
    escalated: str | None = None,
    fallback: str | None = None,
) -> None:
    """Record that ``experiment`` is a night watched on the calibrated level (``cases``,
    the level's), and, when given, why it escalated to the full suite or fell back to it."""
    with session_scope(engine) as session:
        record_calibrated_night(
            session,
            experiment,
            cases=[getattr(c, "id", c) for c in cases],
            suite_cases=suite_cases,
            escalated=escalated,
            fallback=fallback,
        )


@task(name="watch-series", cache_policy=NO_CACHE)
def watch_trends(
    engine: Engine,
    series: str,
    false_alarms_per_100_nights: float,
    escalate_at: float = ESCALATE_SHARE,
) -> dict:
    """The watch over the series after tonight's run: its payload (alarms, events), its
    Markdown for the nightly artifact, and the quality streams that moved beyond noise
    tonight (``escalate``, and their configs ``escalate_configs``: on a calibrated night,
    the configs to run on the full suite, and why)."""
    # pandas: loaded by the watch, not before a run's first generation
    from evaluation.itembank import BankEstimates
    from evaluation.series import moved_lines, watch_and_keep, watch_markdown, watch_payload

    settings = WatchSettings(false_alarms_per_100_nights=false_alarms_per_100_nights)
    with session_scope(engine) as session:
        watch = watch_and_keep(session, series, settings, BankEstimates(session))
    logger = get_run_logger()
    for stream in watch.alarms:
        logger.warning("trend alarm: %s", stream.describe())
    moved = watch.beyond_noise(escalate_at)
    return {
        "payload": watch_payload(watch),
        "markdown": watch_markdown(watch),
        "escalate": moved_lines(moved),
        "escalate_configs": sorted({s.config for s in moved}),
    }
