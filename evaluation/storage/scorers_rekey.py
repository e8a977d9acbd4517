"""Users' scorers' declarations an older evalflow kept by metric name alone (one row per
name: the last scoring's direction was every experiment's), re-keyed by experiment and
metric when the database is opened where it may be written: each row goes to every
experiment whose metrics name it (what the older evalflow read it for). A database read
where it may not be written keeps the older table and is read as before
(``evaluation.storage.scorers``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from evaluation.storage.models import Experiment, ScorerDeclarationRow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

NAME = ScorerDeclarationRow.__table__.name


def keyed_by_metric_alone(engine: Engine) -> bool:
    """Whether the database holds the declarations' table as an older evalflow made it
    (no ``experiment_id``)."""
    inspector = inspect(engine)
    if not inspector.has_table(NAME):
        return False
    return "experiment_id" not in {c["name"] for c in inspector.get_columns(NAME)}


def rekey_declarations(engine: Engine) -> None:
    """The older table's rows, one per experiment whose metrics name theirs, in the table
    this version keeps (read, dropped, made again and filled, in one transaction).
    Another process that re-keyed it first is no failure."""
    if not keyed_by_metric_alone(engine):
        return
    table = ScorerDeclarationRow.__table__
    experiments = Experiment.__table__
    try:
        with engine.begin() as connection:
            # its columns are this version's but the key: read with their types
            older = [column for column in table.c if column.name != "experiment_id"]
            rows = connection.execute(select(*older)).mappings().all()
            ran = connection.execute(select(experiments.c.id, experiments.c.metrics)).all()
            connection.exec_driver_sql(f"DROP TABLE {NAME}")
            table.create(connection)
            keyed = [
                {**row, "experiment_id": experiment}
                for row in rows
                for experiment, metrics in ran
                if row["metric"] in (metrics or ())
            ]
            if keyed:
                connection.execute(insert(table), keyed)
    except (OperationalError, ProgrammingError):
        if keyed_by_metric_alone(engine):
            raise
