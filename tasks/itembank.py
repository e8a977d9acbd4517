"""The calibrated level's cases, chosen from the suite's item bank (evaluation/itembank),
and whether a nightly run can watch on them tonight."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.itembank import BankRefused, sweep_cases, sweep_reason
from evaluation.run._sweep import Sweep
from evaluation.storage.db import session_scope


@task(name="calibrated-cases", cache_policy=NO_CACHE)
def calibrated_level(
    engine: Engine, sweep: Sweep, cases: int | None, experiment: str | None = None
) -> list:
    """The first ``cases`` of the suite's seeded stratified order (10% by default) for
    ``sweep`` run as ``experiment`` (default: the spec's name), with the reason logged
    when the bank cannot serve and the scores stay plain means."""
    with session_scope(engine) as session:
        chosen, note = sweep_cases(session, sweep, cases, experiment)
    if note:
        get_run_logger().warning("calibrated level: %s", note)
    return chosen


@task(name="calibrated-or-full", cache_policy=NO_CACHE)
def calibrated_tonight(
    engine: Engine, sweep: Sweep, cases: int | None, experiment: str | None = None
) -> str:
    """Why tonight's nightly run cannot watch on the calibrated level and runs the full
    suite instead ("" when it can): no bank, a suite changed since its calibration, a
    model family it never saw, a pipeline, more cases than the suite now has."""
    try:
        with session_scope(engine) as session:
            note = sweep_reason(session, sweep, cases, nightly=True, experiment=experiment)
    except BankRefused as exc:
        note = str(exc)
    if note:
        get_run_logger().warning(
            "calibrated nightly: %s; running the full suite tonight instead", note
        )
    return note
