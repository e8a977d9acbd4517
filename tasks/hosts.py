"""Host preparation: model preflight and the per-host Prefect concurrency limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evaluation.backends import Backend
from evaluation.run._llama_cpp_python import (
    is_llama_cpp_python,
    one_at_a_time_warning,
    seedless_warning,
)
from evaluation.run._preflight import HostCheck, preflight_hosts
from evaluation.spec import Config


@task(name="preflight-hosts", cache_policy=NO_CACHE)
async def check_hosts(
    backends: Mapping[str, Backend], models: tuple[str, ...], configs: Sequence[Config] = ()
) -> dict[str, HostCheck]:
    """Every model must be on a reachable host before anything is generated; a
    llama-cpp-python host given more than one slot, or ``configs`` sampled without a
    seed, is warned of, as `doctor` warns (:mod:`evaluation.run._llama_cpp_python`)."""
    checks = await preflight_hosts(backends, models)
    logger = get_run_logger()
    for name, check in checks.items():
        if check.error:
            logger.warning("host %s left out of this run: %s", name, check.error)
            continue
        logger.info("host %s ready: %s", name, ", ".join(sorted(check.models)))
        if is_llama_cpp_python(check.models.values()):
            host = backends[name].host
            for warning in (one_at_a_time_warning(host), seedless_warning(configs, host)):
                if warning:
                    logger.warning("host %s: %s", name, warning)
    return checks
