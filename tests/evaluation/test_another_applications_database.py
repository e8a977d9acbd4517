"""Newcomer F6: a database named as the results database that holds another application's
tables (Prefect's, its URL beside evalflow's in docs/running-for-real.md) got evalflow's 39
tables added beside them by `run` without a word. It is refused in one line by every
command, before anything is written to it (not even SQLite's switch to WAL); an empty
database, one of evalflow's, or EVALFLOW_SHARE_DATABASE=1 is opened as before."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from evaluation.errors import StorageError
from evaluation.run import check_database
from evaluation.settings import SettingError
from evaluation.storage.db import EVALUATION_TABLES, MADE_TOGETHER, create_tables, make_engine
from flows.cli import main
from selection.schema import TABLES as SELECTOR_TABLES
from tests.conftest import REPO
from tests.support.databases import as_the_first_version_made_it, fresh_postgres_url

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
    that wrote it) by every command, switched to WAL, and healthy to `health`."""
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
            "CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256));"
            "CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250));"
        )
    connection.close()
    for create in (True, False):
        _refused_everywhere(path, "3 tables", "alembic_version, experiments, runs", create=create)


def _refused_everywhere(path: Path, held: str, tables: str, **opened: bool) -> None:
    """``make_engine`` (``opened`` says how) and the health check refuse the database at
    ``path`` as another application's, holding ``held`` (``tables``), and leave it and
    its folder as they were."""
    before = path.read_bytes()
    with pytest.raises(StorageError) as refused:
        make_engine(f"sqlite:///{path}", **opened)
    assert str(refused.value).startswith(
        f"the database {path} holds {held}, none of them evalflow's ({tables}): another "
        "application's database?"
    )
    _left_as_it_was(path, before)
    check = check_database(f"sqlite:///{path}")
    assert check.status == "fail" and "none of them evalflow's" in check.detail
    _left_as_it_was(path, before)


def _experiments_beside_notes(path: Path) -> None:
    """Recheck R7: another application's database whose ``experiments`` table has
    evalflow's name and key (``id``), beside a table of its own."""
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT, owner TEXT);"
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);"
            "INSERT INTO experiments (name, owner) VALUES ('kept', 'ana');"
        )
    connection.close()


@pytest.mark.parametrize("reads_only", [True, False])
@pytest.mark.parametrize("create", [True, False])
def test_one_table_of_evalflows_name_and_key_among_anothers_is_not_evalflows(
    tmp_path, create, reads_only
):
    """Recheck R7: one such table was enough to call the database evalflow's: "written by
    an older evalflow" to every command, switched to WAL first, healthy to `health`."""
    path = tmp_path / "tracker.db"
    _experiments_beside_notes(path)
    _refused_everywhere(
        path, "2 tables", "experiments, notes", create=create, reads_only=reads_only
    )


def test_another_applications_database_in_wal_mode_keeps_its_folder_as_it_was(tmp_path):
    """Prefect's own database is in WAL mode: the connection that looked is closed, and
    the -wal and -shm files SQLite made for it go with it."""
    path = tmp_path / "prefect.db"
    _another_applications(path)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match=re.escape(REFUSED)):
        make_engine(f"sqlite:///{path}", create=False, reads_only=True)
    _left_as_it_was(path, before)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from fresh_postgres_url("evalflow_r7")


@pytest.mark.parametrize("create", [True, False])
def test_on_postgresql_too_nothing_is_made_or_read_first(postgres_url, create):
    """A PostgreSQL database of another application's, as R7's: refused by every command,
    a reader's (``create=False``) too, before a table is made or a query of evalflow's
    fails on it; its tables left as they were."""
    url = postgres_url
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE experiments (id SERIAL PRIMARY KEY, name TEXT, owner TEXT);"
            "CREATE TABLE notes (id SERIAL PRIMARY KEY, text TEXT)"
        )
    with pytest.raises(StorageError, match="holds 2 tables, none of them evalflow's"):
        make_engine(url, create=create)
    assert sorted(inspect(engine).get_table_names()) == ["experiments", "notes"]
    engine.dispose()


def test_an_older_evalflows_database_is_evalflows(tmp_path):
    """The first version's tables (as it made them) hold evalflow's core: opened, upgraded
    and its run read; and so the selector's three alone, made on a caller's empty
    database by its API."""
    older = tmp_path / "older.db"
    with sqlite3.connect(older) as connection:
        as_the_first_version_made_it(connection)
        connection.execute(
            "INSERT INTO experiments (name, suite, task_type, spec, spec_path, samples_per_case,"
            " metrics, simulated, status, created_at, updated_at, accepted_baseline) VALUES"
            " ('first', 'qa', 'qa', '{}', '', 1, '[]', 0, 'completed', '2026-11-21 09:00:00',"
            " '2026-11-21 09:00:00', 0)"
        )
    connection.close()
    assert check_database(f"sqlite:///{older}").status == "ok"
    engine = make_engine(f"sqlite:///{older}")
    assert {"review_pairs", "series_runs"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT name FROM experiments").all() == [("first",)]
    engine.dispose()

    selectors = tmp_path / "selector.db"
    engine = create_engine(f"sqlite:///{selectors}")
    create_tables(engine, SELECTOR_TABLES)
    engine.dispose()
    make_engine(f"sqlite:///{selectors}").dispose()
    assert "experiments" in inspect(create_engine(f"sqlite:///{selectors}")).get_table_names()


def test_the_selectors_group_is_its_tables():
    """evaluation/ imports nothing of selection/: the selector's tables are named there."""
    assert MADE_TOGETHER[1] == {
        model.__table__.name: frozenset(c.name for c in model.__table__.primary_key)
        for model in SELECTOR_TABLES
    }


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


def test_evalflows_tables_being_made_are_evalflows(tmp_path):
    """Sweeps that start together on a fresh SQLite file see each other's CREATE TABLEs
    one at a time (each commits on its own): a file holding some of evalflow's tables,
    each with its key, and nothing else is evalflow's being made, not another
    application's (the concurrent-schema race failed so in the full suite)."""
    path = tmp_path / "results.db"
    engine = create_engine(f"sqlite:///{path}")
    first = [t.__table__ for t in EVALUATION_TABLES[:2]]
    EVALUATION_TABLES[0].metadata.create_all(engine, tables=first)
    engine.dispose()
    assert not set(MADE_TOGETHER[0]) <= set(
        inspect(create_engine(f"sqlite:///{path}")).get_table_names()
    )
    make_engine(f"sqlite:///{path}").dispose()
    made = set(inspect(create_engine(f"sqlite:///{path}")).get_table_names())
    assert {t.__table__.name for t in EVALUATION_TABLES} <= made


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
