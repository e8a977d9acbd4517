"""Throwaway databases for tests that run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def fresh_postgres_url(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on 127.0.0.1:5432 (trust auth) named
    ``<prefix>_<random>``, dropped afterwards; the test is skipped where no server runs."""
    import psycopg2

    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def sqlite_or_postgres(kind: str, sqlite_file: Path, prefix: str) -> Iterator[str]:
    """A results database URL of ``kind`` ("sqlite" or "postgresql"): for the ``url``
    fixtures parametrised over both."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_file}"
    else:
        yield from fresh_postgres_url(prefix)
