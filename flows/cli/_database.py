"""The one way a command opens the results database."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

T = TypeVar("T")


def open_engine(args: argparse.Namespace) -> Engine:
    """The database named by ``--database`` (else the environment, else the default),
    with every table a command may touch, review tables included."""
    from evaluation.storage.db import open_database

    return open_database(args.database)


def read_for_bank(database: str | None, needs: str, read: Callable[[Session], T]) -> T:
    """``read`` on the results database for a level that needs an item bank, never
    creating one: refused (``BankRefused``, exit 2, ``needs`` saying who needs what) when
    a SQLite file is not there yet."""
    from evaluation.itembank import BankRefused
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine, session_scope

    url = database_url(database)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise BankRefused(f"{needs} and there is no results database yet")
    engine = make_engine(url, create=False)
    try:
        with session_scope(engine) as session:
            return read(session)
    finally:
        engine.dispose()
