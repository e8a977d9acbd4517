"""Comparison rows: the paired comparisons of one comparison run, replaced as a whole.

A run is named by its ``run_label`` (the experiment's name for the comparison that ends
a sweep, "<a>-vs-<b>" for a comparison of stored experiments); recomputing it replaces
its rows and its record (``comparison_runs``: the digest of its inputs, its verdicts and
markdown), so the tables always hold the latest comparison of each run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, text
from sqlmodel import Session

from evaluation.storage.db import read_frame
from evaluation.storage.dropped import OWN_CONFIGS
from evaluation.storage.models import ComparisonRow, ComparisonRun, utcnow

if TYPE_CHECKING:  # pandas: imported where a frame is read, not for the stored run
    import pandas as pd


def replace_comparisons(
    session: Session,
    run_label: str,
    rows: Sequence[Mapping[str, Any]],
    record: Mapping[str, Any],
) -> int:
    """Replace the rows and the record of ``run_label``: ``rows`` are ComparisonRow fields
    without ``id``, ``run_label`` and ``created_at``, ``record`` the ComparisonRun fields
    without ``run_label`` and ``created_at``. Returns the number of rows stored."""
    session.exec(delete(ComparisonRow).where(ComparisonRow.run_label == run_label))
    session.exec(delete(ComparisonRun).where(ComparisonRun.run_label == run_label))
    now = utcnow()
    session.add_all(ComparisonRow(**row, run_label=run_label, created_at=now) for row in rows)
    session.add(ComparisonRun(**record, run_label=run_label, created_at=now))
    session.flush()
    return len(rows)


def comparison_run(session: Session, run_label: str) -> ComparisonRun | None:
    """The stored record of ``run_label``, if any."""
    return session.get(ComparisonRun, run_label)


def comparisons_frame(session: Session, run_label: str) -> pd.DataFrame:
    """The stored rows of ``run_label``, one per (metric, pair), in insertion order."""
    import pandas as pd

    query = text("SELECT * FROM comparisons WHERE run_label = :r ORDER BY id")
    return pd.read_sql(query, session.connection(), params={"r": run_label})


def latency_scores(session: Session, experiment_id: int) -> pd.DataFrame:
    """Per-generation ``latency_s`` of the successful generations as long score rows
    (config = config hash), so latency is compared like any metric (lower is better)."""
    query = text(
        "SELECT g.config_hash AS config, c.case_id, g.sample_index, "
        'c."group" AS "group", \'latency_s\' AS metric, g.latency_s AS value '
        "FROM generations g JOIN cases c ON c.uid = g.case_uid "
        f"WHERE g.experiment_id = :e AND g.status = 'ok' AND {OWN_CONFIGS}"
    )
    return read_frame(session, query, {"e": experiment_id})


def energy_per_generation(session: Session, experiment_id: int) -> dict[str, float]:
    """Joules per generation by config hash, where telemetry recorded it."""
    query = text(
        "SELECT config_hash, energy_j_per_generation FROM config_telemetry "
        "WHERE experiment_id = :e AND energy_j_per_generation IS NOT NULL"
    )
    rows = session.connection().execute(query, {"e": experiment_id}).all()
    return {h: float(v) for h, v in rows}
