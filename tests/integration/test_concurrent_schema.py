"""Sweeps that start together on a fresh results database (SQLite and PostgreSQL) all
get their tables: the loser of the CREATE TABLE race must not fail."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO
from tests.integration.test_postgres_workers import _connect

pytestmark = pytest.mark.integration

RACERS = 4
# Each racer imports, says so, and waits on its stdin: one pipe shared by all, whose
# write end the test closes once every racer is ready (not a start time: a racer still
# importing when it came, on a loaded machine, raced no one; the others spun meanwhile).
OPEN = """
import sys
from evaluation.storage.db import make_engine
print("ready", flush=True)
sys.stdin.read()
make_engine(sys.argv[1]).dispose()
"""


def race(url: str) -> list[str]:
    """Open ``url`` from RACERS processes at the same instant; their error output."""
    release, go = os.pipe()
    racers = []
    try:
        for _ in range(RACERS):
            racers.append(
                subprocess.Popen(
                    [sys.executable, "-c", OPEN, url],
                    cwd=REPO,
                    stdin=release,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for racer in racers:
            racer.stdout.readline()  # "ready" (or "" where it failed before)
    finally:
        os.close(release)
        os.close(go)  # end of file on every racer's stdin at once
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
