"""Throwaway databases for tests that run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

FIRST_VERSION_SCHEMA = Path(__file__).with_name("first_version_sqlite_master.json")


def as_the_first_version_made_it(connection: sqlite3.Connection) -> None:
    """evalflow's tables as its first version made them, on a SQLite ``connection``: an
    older evalflow's database (evalflow's: every later version opens and upgrades it)."""
    for row in json.loads(FIRST_VERSION_SCHEMA.read_text())["rows"]:
        connection.execute(row["sql"])


def older_lacking_a_required_column(path: Path) -> None:
    """At ``path``, an older evalflow's database (``as_the_first_version_made_it``) whose
    ``experiments`` lacks ``suite``, a column no version can add (NOT NULL, no default),
    with one run: refused as "written by an older evalflow", nothing altered."""
    with sqlite3.connect(path) as connection:
        as_the_first_version_made_it(connection)
        connection.execute("ALTER TABLE experiments DROP COLUMN suite")
        connection.execute(
            "INSERT INTO experiments (name, task_type, spec_path, samples_per_case, simulated,"
            " status, created_at, updated_at, accepted_baseline) VALUES ('old', 'qa', '', 1, 0,"
            " 'completed', '2026-11-21 09:00:00', '2026-11-21 09:00:00', 0)"
        )
    connection.close()


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


def open_together(url: str, processes: int) -> list[str]:
    """Open the results database ``url`` as every command does, from ``processes``
    processes released together by a barrier (spawned: a fork of a test process that ran
    a Prefect server inherits its threads); what each that failed raised."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, errors = context.Barrier(processes), context.Queue()
    opening = [
        context.Process(target=_open_at_once, args=(url, barrier, errors)) for _ in range(processes)
    ]
    for process in opening:
        process.start()
    for process in opening:
        process.join(timeout=300)
    failed = [f"exit code {p.exitcode}" for p in opening if p.exitcode != 0]
    while not errors.empty():
        failed.append(errors.get())
    return failed


def _open_at_once(url: str, barrier: object, errors: object) -> None:
    from evaluation.storage.db import make_engine

    barrier.wait(timeout=120)  # type: ignore[attr-defined]
    try:
        make_engine(url).dispose()
    except Exception as exc:  # reported to the test
        errors.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def query_plan(url: str, query: str) -> str:
    """How the database at ``url`` plans ``query``, one line (PostgreSQL told to avoid a
    scan where it can: on a few rows it would scan either way)."""
    from sqlalchemy import text

    from evaluation.storage.db import make_engine

    engine = make_engine(url, create=False)
    with engine.connect() as connection:
        if url.startswith("sqlite"):
            rows = connection.execute(text(f"EXPLAIN QUERY PLAN {query}"))
            plan = " | ".join(row[3] for row in rows)
        else:
            connection.execute(text("SET enable_seqscan = off"))
            plan = " | ".join(connection.execute(text(f"EXPLAIN {query}")).scalars())
    engine.dispose()
    return plan
