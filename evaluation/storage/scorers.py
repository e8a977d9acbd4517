"""Users' scorers' declarations (``@scorer``: score type, direction, corpus form), kept
as they score, and read back for a command that reads results, so that one whose code
does not import where it reads (a teammate's copy of the database) is read as it
declared itself (``evaluation.metrics._stored``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select, text
from sqlmodel import Session

from evaluation.metrics._stored import StoredDeclaration, remember_declarations, remembering
from evaluation.storage.db import database_name, dialect_insert
from evaluation.storage.models import Experiment, ScorerDeclarationRow, utcnow
from evaluation.storage.scorers_rekey import keyed_by_metric_alone

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evaluation.metrics import Metric


def keep_declarations(session: Session, metrics: Iterable[Metric], experiment_id: int) -> None:
    """Store how each of ``metrics`` that is a user's scorer (its ``source`` known, its
    code here) declared itself as it scored experiment ``experiment_id``, replacing what
    that experiment stored of it before (one statement each: runs scoring the same
    scorer at once do not collide); other experiments keep theirs."""
    table = ScorerDeclarationRow.__table__
    insert = dialect_insert(session.get_bind().dialect.name)
    for metric in metrics:
        if metric.source is None or metric.not_here:
            continue
        row = {
            "experiment_id": experiment_id,
            "metric": metric.name,
            "score_type": metric.score_type,
            "higher_is_better": metric.higher_is_better,
            "corpus_level": metric.corpus_level,
            "description": metric.description,
            "source": metric.source,
            "declared_at": utcnow(),
        }
        statement = insert(table).values(row)
        key = ["experiment_id", "metric"]
        update = {k: statement.excluded[k] for k in row if k not in key}
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
    """The declarations ``engine``'s database keeps, in the order they were declared,
    each with the experiment it scored (None: it has no table of them), and the
    database's name as messages give it. An older evalflow's table, kept by metric
    alone where it may not be written (``storage.scorers_rekey``), is read as every
    experiment's."""
    table = ScorerDeclarationRow.__table__
    if not inspect(engine).has_table(table.name):
        return None, database_name(engine)
    if keyed_by_metric_alone(engine):
        query = text(f"SELECT *, NULL AS experiment FROM {table.name} ORDER BY declared_at")
    else:
        experiments = Experiment.__table__
        query = (
            select(table, experiments.c.name.label("experiment"))
            .join(experiments, experiments.c.id == table.c.experiment_id)
            .order_by(table.c.declared_at)
        )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
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
