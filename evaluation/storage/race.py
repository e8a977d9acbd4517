"""Race rounds in the database (table ``race_rounds``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import text
from sqlmodel import Session, delete

from evaluation.storage.db import insert_ignoring_conflicts
from evaluation.storage.models import RaceRoundRow


def replace_race_rounds(session: Session, experiment_id: int, rows: Sequence[dict]) -> None:
    """Store an experiment's race rounds, replacing the ones stored before."""
    session.exec(delete(RaceRoundRow).where(RaceRoundRow.experiment_id == experiment_id))
    insert_ignoring_conflicts(
        session, RaceRoundRow, [{"experiment_id": experiment_id, **row} for row in rows]
    )


def race_rounds_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    query = text("SELECT * FROM race_rounds WHERE experiment_id = :e ORDER BY round_index")
    return pd.read_sql(query, session.connection(), params={"e": experiment_id})
