"""Storing a run's per-config GPU telemetry."""

from __future__ import annotations

from collections.abc import Mapping

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.run._telemetry import ConfigGpu
from evaluation.storage.db import session_scope
from evaluation.storage.telemetry import save_config_telemetry
from evaluation.wording import counted


@task(name="record-gpu-telemetry", cache_policy=NO_CACHE)
def record_telemetry(
    engine: Engine, experiment_id: int, usage: Mapping[str, ConfigGpu], *, simulated_only: bool
) -> None:
    """Per config: mean GPU utilisation, peak memory, energy per generation, VRAM. A
    sweep on simulated hosts only uses no GPU: nothing is said about measuring one."""
    with session_scope(engine) as session:
        save_config_telemetry(session, experiment_id, usage)
    if simulated_only:
        return
    measured = sum(1 for gpu in usage.values() if gpu.telemetry.source != "unavailable")
    with_vram = sum(1 for gpu in usage.values() if gpu.vram_bytes)
    get_run_logger().info(
        "GPU telemetry: %d of %s measured by NVML, %d with VRAM from /api/ps",
        measured,
        counted(len(usage), "config"),
        with_vram,
    )
