"""Where the API functions get their engine: the caller's, or one made from the
configured URL for the duration of one call (settings are read only here, at the edge)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine


@contextmanager
def engine_for(engine: Engine | None, database_url: str | None) -> Iterator[Engine]:
    """``engine`` as given, else an engine for ``database_url`` (or the configured
    database, ``EVALFLOW_DATABASE_URL``), disposed of afterwards."""
    if engine is not None:
        yield engine
        return
    from evaluation.settings import database_url as configured_url
    from evaluation.storage.db import make_engine

    owned = make_engine(configured_url(database_url))
    try:
        yield owned
    finally:
        owned.dispose()
