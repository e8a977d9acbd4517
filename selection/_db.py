"""Where the API functions get their engine: the caller's, or one made from the
configured URL for the duration of one call (settings are read only here, at the edge).
Either way the selector's own tables (``selection.schema.TABLES``) are created on it
where missing, once per engine; a reader of a database that takes no write and holds
none of them (a read-only copy never retrained) reads it without them, and a reader of a
fresh home an empty database in memory (``not_there_yet`` says where none is yet)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from evaluation.settings import no_database_yet, refuse_a_named_database_not_there, sqlite_file
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
_NOT_THERE: weakref.WeakKeyDictionary[Engine, Path] = weakref.WeakKeyDictionary()


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


def not_there_yet(engine: Engine) -> Path | None:
    """The database file a reader of a fresh home found not there yet, where ``engine``
    is the empty database in memory that stands in for it (``engine_for``); else None."""
    return _NOT_THERE.get(engine)


@contextmanager
def engine_for(
    engine: Engine | None, database_url: str | None, *, reads_only: bool = False
) -> Iterator[Engine]:
    """``engine`` as given, else an engine for ``database_url`` (or the configured
    database, ``EVALFLOW_DATABASE_URL``), disposed of afterwards; for a caller that
    ``reads_only``, a SQLite file in WAL mode in a read-only folder as a snapshot
    (``evaluation.storage.snapshot``), a read-only database without the selector's
    tables as it is, and, where the default SQLite file is not there yet (a fresh home),
    an empty database in memory, so that the read creates neither the file nor its folder
    (a named file not there is refused: ``refuse_a_named_database_not_there``)."""
    if engine is not None:
        yield with_selector_tables(engine, reads_only=reads_only)
        return
    from evaluation.settings import database_url as configured_url

    refuse_a_named_database_not_there(database_url, "database_url")
    url = configured_url(database_url, source="database_url")
    missing = sqlite_file(url) if reads_only and no_database_yet(url) else None
    every_table = missing is not None or not reads_only
    tables = (*EVALUATION_TABLES, *TABLES) if every_table else EVALUATION_TABLES
    owned = make_engine("sqlite://" if missing else url, tables=tables, reads_only=reads_only)
    if every_table:
        _READY.add(owned)  # the selector's tables made with the others
    if missing is not None:
        _NOT_THERE[owned] = missing
    try:
        yield with_selector_tables(owned, reads_only=reads_only)
    finally:
        owned.dispose()
