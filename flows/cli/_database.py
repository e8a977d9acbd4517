"""The one way a command opens the results database."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def open_engine(args: argparse.Namespace) -> Engine:
    """The database named by ``--database`` (else the environment, else the default),
    with every table a command may touch, review tables included."""
    from evaluation.storage.db import open_database

    return open_database(args.database)
