"""The one way a command opens the results database."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import Engine

# Registers the review tables when the CLI is imported, as before the package: an engine
# made by anything after it (a command, a test's fixture) creates the same tables.
import evaluation.review  # noqa: F401


def open_engine(args: argparse.Namespace) -> Engine:
    """The database named by ``--database`` (else the environment, else the default),
    with every table a command may touch, review tables included."""
    from evaluation.storage.db import open_database

    return open_database(args.database)
