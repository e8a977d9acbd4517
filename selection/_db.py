"""Where the API functions get their engine: the caller's, or one made from the
configured URL for the duration of one call (settings are read only here, at the edge).
Either way the selector's own tables (``selection.schema.TABLES``) are created on it
where missing, once per engine; a reader of a database that takes no write and holds
none of them (a read-only copy never retrained) reads it without them."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from evaluation.settings import refuse_a_named_database_not_there
from evaluation.storage.db import (
    EVALUATION_TABLES,
    create_tables,
    make_engine,
    refused_write,
    storage_problem,
)
from evaluation.storage.snapshot import asked_url
from selection.schema import TABLES

_READY: weakref.WeakSet[Engine] = weakref.WeakSet()
_REFUSED: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def with_selector_tables(engine: Engine, *, reads_only: bool = False) -> Engine:
    """``engine``, with the selector's tables created where missing; for a caller that
    ``reads_only``, as it is where the database refuses to take them (``tables_refused``
    says why they are not there; asked again each time, as a writer elsewhere, the
    first `retrain`, may create them meanwhile)."""
    if engine in _READY:
        return engine
    try:
        create_tables(engine, TABLES)  # one of them there, others not: refused in words
    except DBAPIError as exc:
        if not (reads_only and refused_write(exc)):
            raise
        _REFUSED[engine] = storage_problem(exc, asked=asked_url(engine))
        return engine
    _REFUSED.pop(engine, None)
    _READY.add(engine)
    return engine


def tables_refused(engine: Engine) -> str:
    """Why the selector's tables are not on ``engine`` (what the database said when they
    were to be created: "it is read-only (...)"); "" where they are."""
    return _REFUSED.get(engine, "")


@contextmanager
def engine_for(
    engine: Engine | None, database_url: str | None, *, reads_only: bool = False
) -> Iterator[Engine]:
    """``engine`` as given, else an engine for ``database_url`` (or the configured
    database, ``EVALFLOW_DATABASE_URL``), disposed of afterwards; for a caller that
    ``reads_only``, a SQLite file in WAL mode in a read-only folder as a snapshot
    (``evaluation.storage.snapshot``), and a read-only database without the selector's
    tables as it is."""
    if engine is not None:
        yield with_selector_tables(engine, reads_only=reads_only)
        return
    from evaluation.settings import database_url as configured_url

    refuse_a_named_database_not_there(database_url, "database_url")
    url = configured_url(database_url, source="database_url")
    tables = EVALUATION_TABLES if reads_only else (*EVALUATION_TABLES, *TABLES)
    owned = make_engine(url, tables=tables, reads_only=reads_only)
    if not reads_only:
        _READY.add(owned)  # the selector's tables made with the others
    try:
        yield with_selector_tables(owned, reads_only=reads_only)
    finally:
        owned.dispose()
