"""Newcomer F6: a database named as the results database that holds another application's
tables (Prefect's, its URL beside evalflow's in docs/running-for-real.md) got evalflow's 39
tables added beside them by `run` without a word. It is refused in one line by every
command, before anything is written to it (not even SQLite's switch to WAL); an empty
database, one of evalflow's, or EVALFLOW_SHARE_DATABASE=1 is opened as before."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from evaluation.errors import StorageError
from evaluation.run import check_database
from evaluation.settings import SettingError
from evaluation.storage.db import EVALUATION_TABLES, create_tables, make_engine
from flows.cli import main
from tests.conftest import REPO

REFUSED = "holds 2 tables, none of them evalflow's (flow_run, task_run): another application's"


def _another_applications(path: Path) -> bytes:
    """A database with two tables of another application (journal mode DELETE, as
    evalflow's is not), and its bytes."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE flow_run (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("CREATE TABLE task_run (id INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO flow_run (name) VALUES ('kept')")
    connection.close()
    return path.read_bytes()


def _left_as_it_was(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before  # not switched to WAL either
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("create", [True, False])
def test_another_applications_database_is_refused_and_left_as_it_was(tmp_path, create):
    path = tmp_path / "prefect.db"
    before = _another_applications(path)
    with pytest.raises(StorageError) as refused:
        make_engine(f"sqlite:///{path}", create=create)
    assert str(refused.value).startswith(f"the database {path} {REFUSED}")
    assert "or set EVALFLOW_SHARE_DATABASE=1 to add evalflow's tables beside these" in str(
        refused.value
    )
    _left_as_it_was(path, before)


def test_a_table_of_evalflows_name_without_its_columns_is_anothers(tmp_path):
    """Recheck R3: MLflow's database has an `experiments` table too. Taken by its name for
    evalflow's, it was called "written by an older evalflow" (export it with the version
    that wrote it) by every command, switched to WAL, and healthy to `health`. An older
    evalflow's (its `experiments` lacking later columns, but with its key) stays ours."""
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
            "CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256));"
            "CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250));"
        )
    connection.close()
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(StorageError) as refused:
            make_engine(f"sqlite:///{path}", create=create)
        assert str(refused.value).startswith(
            f"the database {path} holds 3 tables, none of them evalflow's (alembic_version, "
            "experiments, runs): another application's database?"
        )
    _left_as_it_was(path, before)
    check = check_database(f"sqlite:///{path}")
    assert check.status == "fail" and "none of them evalflow's" in check.detail
    older = tmp_path / "older.db"
    with sqlite3.connect(older) as connection:
        connection.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT)")
    connection.close()
    with pytest.raises(StorageError, match="was written by an older evalflow"):
        make_engine(f"sqlite:///{older}")
    assert check_database(f"sqlite:///{older}").status == "warn"  # some tables missing


def test_the_tables_are_looked_for_on_any_database_they_are_created_on(tmp_path):
    """create_tables, where a PostgreSQL engine and the selector's get their tables."""
    path = tmp_path / "prefect.db"
    _another_applications(path)
    engine = create_engine(f"sqlite:///{path}")
    with pytest.raises(StorageError, match=re.escape(REFUSED)):
        create_tables(engine, EVALUATION_TABLES)
    assert set(inspect(engine).get_table_names()) == {"flow_run", "task_run"}
    engine.dispose()


def test_an_empty_database_or_evalflows_own_is_opened(tmp_path):
    empty = tmp_path / "empty.db"
    with sqlite3.connect(empty) as connection:
        connection.execute("PRAGMA user_version = 1")  # a database file, no table in it
    connection.close()
    make_engine(f"sqlite:///{empty}").dispose()
    tables = set(inspect(create_engine(f"sqlite:///{empty}")).get_table_names())
    assert {"experiments", "generations"} <= tables
    make_engine(f"sqlite:///{empty}").dispose()  # evalflow's own now: opened again


def test_share_database_adds_evalflows_tables_beside_the_others(tmp_path, monkeypatch):
    path = tmp_path / "shared.db"
    _another_applications(path)
    monkeypatch.setenv("EVALFLOW_SHARE_DATABASE", "maybe")
    with pytest.raises(SettingError, match="EVALFLOW_SHARE_DATABASE='maybe': expected 1"):
        make_engine(f"sqlite:///{path}")
    monkeypatch.setenv("EVALFLOW_SHARE_DATABASE", "1")
    make_engine(f"sqlite:///{path}").dispose()
    monkeypatch.delenv("EVALFLOW_SHARE_DATABASE")
    make_engine(f"sqlite:///{path}").dispose()  # evalflow's tables are there: never asked
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM flow_run").fetchall() == [("kept",)]
        assert connection.execute("SELECT count(*) FROM experiments").fetchone() == (0,)
    connection.close()


def test_run_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    path = tmp_path / "prefect.db"
    before = _another_applications(path)
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    assert main(["--database", f"sqlite:///{path}", "run", str(spec), "-q"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: the database {path} {REFUSED}")
    _left_as_it_was(path, before)
