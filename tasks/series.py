"""Recording a run's place in its series and what it really ran with."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.run._sweep import Sweep
from evaluation.series import record_run, what_ran
from evaluation.storage.db import session_scope
from evaluation.storage.repository import suite_fingerprint
from tasks.host_pool import HostPool


@task(name="record-what-ran", cache_policy=NO_CACHE)
async def record_what_ran(
    engine: Engine, experiment: str, sweep: Sweep, pool: HostPool, series: str | None
) -> None:
    """Ask each host what its models were (digest, quantisation, server version, context
    length) and store it with the run's series (``series``, else the spec's name)."""
    found = {h: c.models for h, c in pool.checks.items() if c.up and c.models}
    models = await what_ran(pool.backends, found)
    with session_scope(engine) as session:
        record_run(
            session,
            experiment,
            series=series or sweep.spec.name,
            explicit=series is not None,
            suite=sweep.suite.name,
            suite_digest=suite_fingerprint(sweep.suite),
            models=models,
        )
