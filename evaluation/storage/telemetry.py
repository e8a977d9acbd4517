"""Per-config GPU telemetry rows (``config_telemetry``): written after a run, read by the
regression check and the selector's training frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlmodel import Session

from evaluation.run._telemetry import ConfigGpu
from evaluation.storage.db import insert_ignoring_conflicts
from evaluation.storage.models import ConfigTelemetry

if TYPE_CHECKING:  # written as a run ends, so pandas loads where it is read
    import pandas as pd

_COLUMNS = ("source", "mean_gpu_util_pct", "peak_memory_bytes", "energy_j_per_generation",
            "vram_bytes")  # fmt: skip


def save_config_telemetry(
    session: Session, experiment_id: int, usage: Mapping[str, ConfigGpu]
) -> None:
    """Store (or replace) the telemetry of the configs measured in a run."""
    rows = [
        {
            "experiment_id": experiment_id,
            "config_hash": config,
            "source": gpu.telemetry.source,
            "mean_gpu_util_pct": gpu.telemetry.mean_util_pct,
            "peak_memory_bytes": gpu.telemetry.peak_memory_bytes,
            "energy_j_per_generation": gpu.telemetry.energy_j_per_generation,
            "vram_bytes": gpu.vram_bytes,
        }
        for config, gpu in usage.items()
    ]
    insert_ignoring_conflicts(session, ConfigTelemetry, rows, update_columns=_COLUMNS)


def telemetry_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """One row per config with stored telemetry (columns of ``config_telemetry``)."""
    import pandas as pd

    query = text("SELECT * FROM config_telemetry WHERE experiment_id = :e")
    return pd.read_sql(query, session.connection(), params={"e": experiment_id})
