"""SQLite's output search index kept off the record writer's path: the rows a run
stores are indexed in bulk once its generation phase ends (``index_new_outputs``), and
a search before that (a run still generating, one killed mid-phase, a read-only copy)
reads the index up to its last id and tests each output after it. Every output is
found, and found once; a database an older evalflow indexed on insert keeps working."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlmodel import Session

from evaluation.backends.base import GenerationResult
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.storage import text_search
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import save_generations
from evaluation.storage.text_search import FTS_TABLE, UPTO_TABLE, index_new_outputs
from evaluation.suites import Case, Suite
from evaluation.view.queries import Filters, generation_page
from tests.support.databases import sqlite_or_postgres
from tests.support.results_db import make_config, register_unrun

CONFIG = make_config("sim:a")
SUITE = Suite(
    "s",
    "1",
    "qa",
    ("exact_match",),
    tuple(Case(id=f"c{i:02d}", input="?", references=("x",)) for i in range(12)),
)
OLDER_TRIGGERS = (  # as evalflow before this change made them: every row indexed on insert
    f"""CREATE TRIGGER {FTS_TABLE}_insert AFTER INSERT ON generations BEGIN
        INSERT INTO {FTS_TABLE}(rowid, output) VALUES (new.id, new.output); END""",
    f"""CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON generations BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, output)
        VALUES ('delete', old.id, old.output); END""",
    f"""CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF output ON generations
        BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, output)
        VALUES ('delete', old.id, old.output);
        INSERT INTO {FTS_TABLE}(rowid, output) VALUES (new.id, new.output); END""",
)


def _experiment(engine) -> int:
    with session_scope(engine) as session:
        return int(register_unrun(session, "e", spec_path="", suite=SUITE, configs=[CONFIG]).id)


def _store(engine, experiment_id: int, outputs: dict[int, str]) -> None:
    """What the record writer stores for a batch (``save_generations``): case i's output."""
    records = []
    for i, output in outputs.items():
        item = WorkItem(CONFIG, SUITE.cases[i], SUITE.name, 0)
        result = GenerationResult(output, "stop", 0.02, 0.005, 12, 16, 0, 1000, 2000, 3000, True)
        records.append(GenerationRecord(item, "sim", 1, result))
    with session_scope(engine) as session:
        save_generations(session, experiment_id, records)


def _found(engine, experiment_id: int, needle: str) -> list[str]:
    """The case ids a search lists, every row of it (a row twice shows twice)."""
    with Session(engine) as session:
        page = generation_page(session, experiment_id, Filters(text=needle), per_page=100)
    return sorted(r["case_id"] for r in page.rows)


def _in_index(engine, needle: str) -> int:
    """How many entries of the index hold ``needle`` (a row indexed twice counts twice)."""
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?", (f'"{needle}"',)
        ).scalar_one()


def _names(engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name FROM sqlite_master").all()
    return {r[0] for r in rows}


@pytest.fixture(params=["index", "each output"])
def path(request, tmp_path, monkeypatch):
    """A database file; "each output": a common text, searched output by output."""
    if request.param == "each output":
        monkeypatch.setattr(text_search, "NARROW", 1)
    return tmp_path / "search.db"


def test_rows_the_writer_stores_are_found_before_and_after_they_are_indexed(path):
    engine = make_engine(f"sqlite:///{path}")
    e = _experiment(engine)
    _store(engine, e, {0: "Paris is the capital", 1: "Lyon", 2: "PARIS again"})
    assert _in_index(engine, "paris") == 0  # the writer's path indexes nothing
    assert _found(engine, e, "paris") == ["c00", "c02"]  # read one by one meanwhile
    assert index_new_outputs(engine) == 3
    assert _in_index(engine, "paris") == 2
    assert _found(engine, e, "paris") == ["c00", "c02"]
    _store(engine, e, {3: "Parisian", 4: "nothing"})  # the next batch: after the index's id
    assert _found(engine, e, "paris") == ["c00", "c02", "c03"]
    engine.dispose()


def test_rows_a_killed_run_left_unindexed_are_indexed_once_by_a_later_catch_up(path):
    """kill -9 mid-phase: rows stored, the phase's end never came. Two runs on the file
    (two engines) index them in turns, a page at a time: each row once."""
    url = f"sqlite:///{path}"
    first, second = make_engine(url), make_engine(url)
    e = _experiment(first)
    _store(first, e, {i: f"answer {i} of the killed run" for i in range(5)})
    assert _found(second, e, "killed run") == [f"c{i:02d}" for i in range(5)]
    _store(second, e, {i: f"answer {i} of the next run" for i in range(5, 9)})
    assert index_new_outputs(second, page=2) == 9  # five pages, two rows each at most
    assert index_new_outputs(first) == 0  # nothing new: nothing indexed again
    assert index_new_outputs(second) == 0
    assert _in_index(first, "answer") == 9
    with first.connect() as connection:
        upto = connection.exec_driver_sql(f"SELECT upto FROM {UPTO_TABLE}").scalar_one()
        last = connection.exec_driver_sql("SELECT max(id) FROM generations").scalar_one()
    assert upto == last
    assert _found(first, e, "killed run") == [f"c{i:02d}" for i in range(5)]
    assert _found(second, e, "answer") == [f"c{i:02d}" for i in range(9)]
    first.dispose()
    second.dispose()


def test_a_failed_row_replaced_and_a_deleted_last_row_stay_consistent(path):
    """The writer replaces a failed generation's row (an UPDATE of its output); a row
    deleted from the end leaves its id to the next row stored, which is not indexed."""
    engine = make_engine(f"sqlite:///{path}")
    e = _experiment(engine)
    item = WorkItem(CONFIG, SUITE.cases[0], SUITE.name, 0)
    with session_scope(engine) as session:
        save_generations(session, e, [GenerationRecord(item, "sim", 3, error="timed out")])
    _store(engine, e, {1: "first zebra"})
    index_new_outputs(engine)
    _store(engine, e, {0: "a zebra at last"})  # replaces the failed row, which is indexed
    assert _found(engine, e, "zebra") == ["c00", "c01"]
    assert _found(engine, e, "timed out") == []
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM generations WHERE case_uid = 's/c01'")
    assert _found(engine, e, "zebra") == ["c00"]
    _store(engine, e, {2: "another zebra"})  # the deleted row's id again
    assert _found(engine, e, "zebra") == ["c00", "c02"]
    assert index_new_outputs(engine) == 1
    assert _found(engine, e, "zebra") == ["c00", "c02"]
    assert _in_index(engine, "zebra") == 2
    engine.dispose()


def _as_an_older_evalflow_left_it(engine) -> None:
    """This version's index turned into an older evalflow's: every row indexed by its
    three triggers, no last id."""
    with engine.begin() as connection:
        for name in ("delete", "update"):
            connection.exec_driver_sql(f"DROP TRIGGER {FTS_TABLE}_{name}")
        connection.exec_driver_sql(f"DROP TABLE {UPTO_TABLE}")
        connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        for trigger in OLDER_TRIGGERS:
            connection.exec_driver_sql(trigger)


def test_an_older_evalflows_database_opens_and_searches_each_row_once(path):
    engine = make_engine(f"sqlite:///{path}")
    e = _experiment(engine)
    _as_an_older_evalflow_left_it(engine)
    _store(engine, e, {0: "Paris", 1: "Lyon"})  # indexed by the older insert trigger
    engine.dispose()
    # read-only (a teammate's copy): searched as it is, every row in the index
    read_only = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert f"{FTS_TABLE}_insert" in _names(read_only)
    assert _found(read_only, e, "paris") == ["c00"]
    read_only.dispose()
    engine = make_engine(f"sqlite:///{path}")  # where it may be written: brought up to date
    assert f"{FTS_TABLE}_insert" not in _names(engine)
    assert UPTO_TABLE in _names(engine)
    assert _found(engine, e, "paris") == ["c00"]
    assert index_new_outputs(engine) == 0  # its rows were indexed already
    _store(engine, e, {2: "Paris, later"})
    assert _in_index(engine, "paris") == 1  # the insert trigger is gone
    assert index_new_outputs(engine) == 1
    assert _found(engine, e, "paris") == ["c00", "c02"]
    assert _in_index(engine, "paris") == 2
    engine.dispose()


def test_an_older_evalflow_that_wrote_after_this_one_gets_the_index_rebuilt(path):
    """This version's database, then an older evalflow's run on it (its insert trigger
    back, its rows indexed), then this version again: nothing twice, nothing missing."""
    engine = make_engine(f"sqlite:///{path}")
    e = _experiment(engine)
    _store(engine, e, {0: "zebra one"})  # not yet indexed
    with engine.begin() as connection:
        connection.exec_driver_sql(OLDER_TRIGGERS[0])  # the older evalflow opened it
    _store(engine, e, {1: "zebra two"})  # indexed by its trigger
    assert _found(engine, e, "zebra") == ["c00", "c01"]  # read as it is: once each
    engine.dispose()
    engine = make_engine(f"sqlite:///{path}")
    assert f"{FTS_TABLE}_insert" not in _names(engine)
    assert _in_index(engine, "zebra") == 2
    assert index_new_outputs(engine) == 0
    assert _found(engine, e, "zebra") == ["c00", "c01"]
    engine.dispose()


def test_a_read_only_copy_with_unindexed_rows_finds_every_output(tmp_path):
    path = tmp_path / "copy.db"
    engine = make_engine(f"sqlite:///{path}")
    e = _experiment(engine)
    _store(engine, e, {0: "indexed zebra"})
    index_new_outputs(engine)
    _store(engine, e, {1: "unindexed zebra"})  # the run was killed before its end
    engine.dispose()
    with sqlite3.connect(path) as connection:  # folded into the file, as a copy would be
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    read_only = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert _found(read_only, e, "zebra") == ["c00", "c01"]
    read_only.dispose()


@pytest.fixture
def postgres_url(tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres("postgresql", tmp_path / "unused.db", "evalflow_fts")


def test_on_postgresql_the_writers_rows_are_found_with_nothing_to_catch_up(postgres_url):
    """PostgreSQL keeps its trigram index as rows are stored (no trigger of evalflow's)."""
    engine = make_engine(postgres_url)
    e = _experiment(engine)
    _store(engine, e, {0: "Paris is the capital", 1: "Lyon"})
    assert index_new_outputs(engine) == 0
    assert _found(engine, e, "paris") == ["c00"]
    engine.dispose()
