"""The calibrated level's cases, chosen from the suite's item bank (evaluation/itembank)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.itembank import sweep_cases
from evaluation.run._sweep import Sweep
from evaluation.storage.db import session_scope


@task(name="calibrated-cases", cache_policy=NO_CACHE)
def calibrated_level(engine: Engine, sweep: Sweep, cases: int | None) -> list:
    """The first ``cases`` of the suite's seeded stratified order (10% by default), with
    the reason logged when the bank cannot serve and the scores stay plain means."""
    with session_scope(engine) as session:
        chosen, note = sweep_cases(session, sweep, cases)
    if note:
        get_run_logger().warning("calibrated level: %s", note)
    return chosen
