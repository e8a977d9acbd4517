"""Host preparation: model preflight and the per-host Prefect concurrency limits."""

from __future__ import annotations

from collections.abc import Mapping

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evaluation.backends import Backend
from evaluation.run._preflight import HostCheck, preflight_hosts


@task(name="preflight-hosts", cache_policy=NO_CACHE)
async def check_hosts(
    backends: Mapping[str, Backend], models: tuple[str, ...]
) -> dict[str, HostCheck]:
    """Every model must be on a reachable host before anything is generated."""
    checks = await preflight_hosts(backends, models)
    logger = get_run_logger()
    for name, check in checks.items():
        if check.error:
            logger.warning("host %s left out of this run: %s", name, check.error)
        else:
            logger.info("host %s ready: %s", name, ", ".join(sorted(check.models)))
    return checks
