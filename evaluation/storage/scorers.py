"""Users' scorers' declarations (``@scorer``: score type, direction, corpus form), kept
as they score, and read back for a command that reads results, so that one whose code
does not import where it reads (a teammate's copy of the database) is read as it
declared itself (``evaluation.metrics._stored``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select
from sqlmodel import Session

from evaluation.metrics._stored import StoredDeclaration, remember_declarations, remembering
from evaluation.storage.db import database_name, dialect_insert
from evaluation.storage.models import ScorerDeclarationRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evaluation.metrics import Metric


def keep_declarations(session: Session, metrics: Iterable[Metric]) -> None:
    """Store how each of ``metrics`` that is a user's scorer (its ``source`` known, its
    code here) declared itself, replacing what was stored of it before (one statement
    each: runs scoring the same scorer at once do not collide)."""
    table = ScorerDeclarationRow.__table__
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
        statement = insert(table).values(row)
        update = {k: statement.excluded[k] for k in row if k != "metric"}
        session.exec(statement.on_conflict_do_update(index_elements=["metric"], set_=update))


def remember_stored_declarations(engine: Engine) -> None:
    """Have users' scorers whose code does not import here read as the declarations
    ``engine``'s database keeps say (``evaluation.metrics._stored``); where it lacks
    their table (an older evalflow's, read where it may not be written), that it keeps
    none."""
    remember_declarations(*_stored_declarations(engine))


@contextmanager
def stored_declarations_read(engine: Engine) -> Iterator[None]:
    """``remember_stored_declarations`` while the block runs (a flow that only reads, as
    `compare --publish` runs it); what was remembered before comes back after."""
    with remembering(*_stored_declarations(engine)):
        yield


def _stored_declarations(engine: Engine) -> tuple[list[StoredDeclaration] | None, str]:
    """The declarations ``engine``'s database keeps (None: it has no table of them), and
    its name as messages give it."""
    table = ScorerDeclarationRow.__table__
    if not inspect(engine).has_table(table.name):
        return None, database_name(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(table)).mappings().all()
    declarations = [
        StoredDeclaration(
            metric=row["metric"],
            score_type=row["score_type"],
            higher_is_better=bool(row["higher_is_better"]),
            corpus_level=bool(row["corpus_level"]),
            description=row["description"],
            source=row["source"],
        )
        for row in rows
    ]
    return declarations, database_name(engine)
