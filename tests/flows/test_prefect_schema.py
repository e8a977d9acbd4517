"""The schema snapshot a new Prefect home starts from is what Prefect's own migrations
create, for the Prefect installed; it is used only where it applies."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import prefect

from flows import prefect_schema
from tests.conftest import REPO


def test_the_snapshot_means_what_the_installed_prefects_migrations_create():
    """Runs every migration on a new database (as a fresh `prefect server start` would)
    and compares tables, columns, keys, indexes and rows with the snapshot loaded."""
    done = subprocess.run(
        [sys.executable, "-m", "flows.prefect_schema", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert prefect_schema.snapshot_version() == prefect.__version__


def database(path: Path, script: str) -> Path:
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
    connection.close()
    return path


def test_schema_facts_ignore_constraint_order_but_not_a_missing_index(tmp_path):
    table = "CREATE TABLE t (\n\ta INTEGER,\n\tb TEXT,\n\t{first},\n\t{second}\n);"  # as Prefect's
    keys = ("CONSTRAINT pk PRIMARY KEY (a)", "CONSTRAINT uq UNIQUE (b)")
    index = "CREATE INDEX ix_b ON t (b);"
    one = database(tmp_path / "1.db", table.format(first=keys[0], second=keys[1]) + index)
    other = database(tmp_path / "2.db", table.format(first=keys[1], second=keys[0]) + index)
    no_index = database(tmp_path / "3.db", table.format(first=keys[0], second=keys[1]))
    assert prefect_schema.schema_facts(one) == prefect_schema.schema_facts(other)
    assert prefect_schema.schema_facts(one) != prefect_schema.schema_facts(no_index)


def test_a_database_is_seeded_only_where_none_exists_and_the_version_matches(tmp_path):
    version = prefect_schema.snapshot_version()
    assert version is not None
    path = tmp_path / "prefect.db"
    url = f"sqlite+aiosqlite:///{path}"

    assert not prefect_schema.seed_fresh_database("0.0.1", url)  # another Prefect
    assert not path.exists()
    assert prefect_schema.seed_fresh_database(version, url)
    with sqlite3.connect(path) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type='table'")
        assert tables.fetchone()[0] > 30
    connection.close()
    assert revision in prefect_schema.SNAPSHOT.read_text()
    assert not prefect_schema.seed_fresh_database(version, url)  # never over a database
    assert list(tmp_path.iterdir()) == [path]  # nothing left aside

    missing_folder = f"sqlite+aiosqlite:///{tmp_path / 'no-such' / 'prefect.db'}"
    assert not prefect_schema.seed_fresh_database(version, missing_folder)
    assert not prefect_schema.seed_fresh_database(version, "postgresql+asyncpg://u@h/db")
    assert not prefect_schema.seed_fresh_database(version, "sqlite+aiosqlite:///:memory:")
