"""Users' scorers' declarations (``@scorer``: score type, direction, corpus form), kept
as they score, and read back for a command that reads results, so that one whose code
does not import where it reads (a teammate's copy of the database) is read as it
declared itself (``evaluation.metrics._stored``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import inspect, null, select
from sqlmodel import Session

from evaluation.metrics._stored import StoredDeclaration, remember_declarations, remembering
from evaluation.storage.db import database_name, dialect_insert
from evaluation.storage.models import (
    Experiment,
    ExperimentScorerDeclarationRow,
    ScorerDeclarationRow,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evaluation.metrics import Metric


def keep_declarations(session: Session, metrics: Iterable[Metric], experiment_id: int) -> None:
    """Store how each of ``metrics`` that is a user's scorer (its ``source`` known, its
    code here) declared itself as it scored experiment ``experiment_id``: as the
    experiment's own, replacing what it stored of it before (other experiments keep
    theirs), and as the metric's latest, the one row per name an older evalflow writes
    and reads too (one statement each: runs scoring the same scorer at once do not
    collide)."""
    insert = dialect_insert(session.get_bind().dialect.name)
    for metric in metrics:
        if metric.source is None or metric.not_here:
            continue
        row = {
            "metric": metric.name,
            "score_type": metric.score_type,
            "higher_is_better": metric.higher_is_better,
            "corpus_level": metric.corpus_level,
            "description": metric.description,
            "source": metric.source,
            "declared_at": utcnow(),
        }
        for table, key in (
            (ScorerDeclarationRow.__table__, ["metric"]),
            (ExperimentScorerDeclarationRow.__table__, ["experiment_id", "metric"]),
        ):
            values = row if len(key) == 1 else {**row, "experiment_id": experiment_id}
            statement = insert(table).values(values)
            update = {k: statement.excluded[k] for k in values if k not in key}
            session.exec(statement.on_conflict_do_update(index_elements=key, set_=update))


def remember_stored_declarations(engine: Engine, experiments: Iterable[str] = ()) -> None:
    """Have users' scorers whose code does not import here read as the declarations
    ``engine``'s database keeps say (``evaluation.metrics._stored``), those of
    ``experiments`` (the command reads them) first; where it lacks their table (an older
    evalflow's, read where it may not be written), that it keeps none."""
    remember_declarations(*_stored_declarations(engine), experiments)


@contextmanager
def stored_declarations_read(engine: Engine, experiments: Iterable[str] = ()) -> Iterator[None]:
    """``remember_stored_declarations`` while the block runs (a flow that only reads, as
    `compare --publish` runs it); what was remembered before comes back after."""
    with remembering(*_stored_declarations(engine), experiments):
        yield


def _stored_declarations(engine: Engine) -> tuple[list[StoredDeclaration] | None, str]:
    """The declarations ``engine``'s database keeps, in the order they were declared
    (None: it has no table of them), and the database's name as messages give it: each
    experiment's own, with its name, and each metric's latest (``scorer_declarations``,
    as an older evalflow keeps it too), with none, which an experiment that has none of
    its own is read with (it scored before they were kept, or an older evalflow scored
    it). A database read where it may not be written may lack the experiments' table:
    it is read with the latest alone, as before."""
    latest = ScorerDeclarationRow.__table__
    inspector = inspect(engine)
    if not inspector.has_table(latest.name):
        return None, database_name(engine)
    queries = [select(latest, null().label("experiment"))]
    own = ExperimentScorerDeclarationRow.__table__
    if inspector.has_table(own.name):
        experiments = Experiment.__table__
        columns = [own.c[column.name] for column in latest.c]
        queries.append(
            select(*columns, experiments.c.name.label("experiment")).join(
                experiments, experiments.c.id == own.c.experiment_id
            )
        )
    with engine.connect() as connection:
        rows = [row for query in queries for row in connection.execute(query).mappings().all()]
    rows.sort(key=lambda row: row["declared_at"])  # stable: a metric's latest, then its own
    declarations = [
        StoredDeclaration(
            metric=row["metric"],
            score_type=row["score_type"],
            higher_is_better=bool(row["higher_is_better"]),
            corpus_level=bool(row["corpus_level"]),
            description=row["description"],
            source=row["source"],
            experiment=row["experiment"],
        )
        for row in rows
    ]
    return declarations, database_name(engine)
