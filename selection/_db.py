"""Where the API functions get their engine: the caller's, or one made from the
configured URL for the duration of one call (settings are read only here, at the edge).
Either way the selector's own tables (``selection.schema.TABLES``) are created on it
where missing, once per engine."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from evaluation.settings import refuse_a_named_database_not_there
from evaluation.storage.db import EVALUATION_TABLES, create_tables, make_engine
from selection.schema import TABLES

_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


def with_selector_tables(engine: Engine) -> Engine:
    """``engine``, with the selector's tables created where missing."""
    if engine not in _READY:
        create_tables(engine, TABLES)
        _READY.add(engine)
    return engine


@contextmanager
def engine_for(
    engine: Engine | None, database_url: str | None, *, reads_only: bool = False
) -> Iterator[Engine]:
    """``engine`` as given, else an engine for ``database_url`` (or the configured
    database, ``EVALFLOW_DATABASE_URL``), disposed of afterwards; for a caller that
    ``reads_only``, a SQLite file in WAL mode in a read-only folder as a snapshot
    (``evaluation.storage.snapshot``)."""
    if engine is not None:
        yield with_selector_tables(engine)
        return
    from evaluation.settings import database_url as configured_url

    refuse_a_named_database_not_there(database_url, "database_url")
    url = configured_url(database_url, source="database_url")
    owned = make_engine(url, tables=(*EVALUATION_TABLES, *TABLES), reads_only=reads_only)
    _READY.add(owned)
    try:
        yield owned
    finally:
        owned.dispose()
