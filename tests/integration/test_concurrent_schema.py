"""Sweeps that start together on a fresh results database (SQLite and PostgreSQL) all
get their tables: the loser of the CREATE TABLE race must not fail."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import REPO
from tests.integration.test_postgres_workers import _connect

pytestmark = pytest.mark.integration

RACERS = 4
OPEN = """
import sys, time
from evaluation.storage.db import make_engine
while time.time() < float(sys.argv[2]):
    pass
make_engine(sys.argv[1]).dispose()
"""


def race(url: str) -> list[str]:
    """Open ``url`` from RACERS processes at the same instant; their error output."""
    start = str(time.time() + 3.0)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, start],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RACERS)
    ]
    return [p.communicate(timeout=60)[1] for p in racers if p.wait(timeout=60) != 0]


@pytest.mark.parametrize("round_", range(2))
def test_sqlite(tmp_path, round_):
    assert race(f"sqlite:///{tmp_path / 'fresh.db'}") == []


def test_postgresql():
    try:
        admin = _connect()
    except Exception as exc:  # psycopg2.OperationalError and friends
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    name = f"evalflow_it_{uuid.uuid4().hex[:8]}_race"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        assert race(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}") == []
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
