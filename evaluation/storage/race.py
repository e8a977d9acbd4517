"""Race rounds in the database (table ``race_rounds``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlmodel import Session, delete

from evaluation.storage.db import insert_ignoring_conflicts
from evaluation.storage.models import RaceRoundRow

if TYPE_CHECKING:
    import pandas as pd


def replace_race_rounds(session: Session, experiment_id: int, rows: Sequence[dict]) -> None:
    """Store an experiment's race rounds, replacing the ones stored before."""
    session.exec(delete(RaceRoundRow).where(RaceRoundRow.experiment_id == experiment_id))
    insert_ignoring_conflicts(
        session, RaceRoundRow, [{"experiment_id": experiment_id, **row} for row in rows]
    )


def race_rounds_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    import pandas as pd

    query = text("SELECT * FROM race_rounds WHERE experiment_id = :e ORDER BY round_index")
    return pd.read_sql(query, session.connection(), params={"e": experiment_id})


def raced(session: Session, experiment_id: int) -> bool:
    """Whether the experiment has race rounds stored (one indexed look: `show` imports
    the race's standing, numpy and pandas, only then)."""
    query = text("SELECT 1 FROM race_rounds WHERE experiment_id = :e LIMIT 1")
    return session.connection().execute(query, {"e": experiment_id}).first() is not None
