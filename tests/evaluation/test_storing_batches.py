"""The record writer's batches (``repository.save_generations``) on SQLite and on
PostgreSQL, where each table's rows go as one statement of unnested arrays
(``storage.unnest``): the rows left are those of storing the records one by one, the
same on both databases, and a batch re-stored changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select, text
from sqlalchemy.sql.compiler import SQLCompiler

from evaluation.backends.base import GenerationResult
from evaluation.pipelines._trace import CaseTrace, RetrievedChunk, StageRecord
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.storage.db import insert_ignoring_conflicts, make_engine, session_scope
from evaluation.storage.executemany import insert_many
from evaluation.storage.models import TABLES as RESULTS
from evaluation.storage.models import CaseRun, Generation, StageRow
from evaluation.storage.repository import record_suite, register_experiment, save_generations
from tests.support.databases import fresh_postgres_url
from tests.support.results_db import make_config, make_suite

SUITE = make_suite(40)
A, B = make_config("m:1b", 0.0), make_config("m:1b", 0.7)
STARTED = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Engine]:
    """One PostgreSQL database for the module (each test its own experiment)."""
    for url in fresh_postgres_url("evalflow_batches"):
        engine = make_engine(url, tables=RESULTS)
        yield engine
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Engine:
    if request.param == "sqlite":
        return make_engine(f"sqlite:///{tmp_path / 'r.db'}", tables=RESULTS)
    return request.getfixturevalue("postgres")


def ok(config, i: int, text: str, *, model: str = "m:1b", rag: bool = False) -> GenerationRecord:
    item = WorkItem(config, SUITE.cases[i], SUITE.name, 0)
    result = GenerationResult(text, "stop", 0.25, None, None, 7, 1, 2, 3, 4)
    stages = [StageRecord("generate", "generate", model, "h", STARTED, 0.125, 0.25, None, 7)]
    if rag:
        stages = [
            StageRecord("embed", "embed", "e:1", "h", STARTED, 0.0, 0.1, 3, shared=True),
            StageRecord(
                "answer", "generate", model, "h", STARTED, 0.1, 0.2, 12, 7, 11, 2, True, 0.05,
                prompt=(("user", f"q {i} é"),), output=text,
                retrieved=(RetrievedChunk("d1#0", 0.875), RetrievedChunk("d2#3", 0.5)),
            ),
        ]  # fmt: skip
    pipeline = "rag" if rag else "single"
    trace = CaseTrace(
        pipeline, 0.5, tuple(stages), {"retrieved_chunk_ids": ["d1#0"]} if rag else {}
    )
    return GenerationRecord(item, "h", 1, result, trace=trace)


def failed(config, i: int, error: str, attempts: int = 3) -> GenerationRecord:
    return GenerationRecord(
        WorkItem(config, SUITE.cases[i], SUITE.name, 0), "h", attempts, error=error
    )


def new_experiment(engine) -> int:
    with session_scope(engine) as session:
        record_suite(session, SUITE)
        return register_experiment(
            session, name=uuid.uuid4().hex, suite=SUITE, configs=[A, B], spec={}, spec_path="",
            samples_per_case=1, metrics=["exact_match"], simulated=False,
        ).id  # fmt: skip


def store(engine, experiment_id: int, *batches: list[GenerationRecord]) -> None:
    for batch in batches:
        with session_scope(engine) as session:
            save_generations(session, experiment_id, batch)


FIRST = [ok(A, 0, "first"), failed(A, 1, "down"), failed(B, 0, "x"), ok(B, 5, "r", rag=True)]
SECOND = [  # a key twice in one batch: each upsert as if run one after the other
    failed(A, 1, "again"),
    ok(A, 1, "late"),  # replaces a failed row
    ok(B, 0, "one"),
    ok(B, 0, "two"),  # an "ok" row is never replaced
    failed(A, 2, "e1"),
    failed(A, 2, "e2", attempts=5),  # a failed row by a later failure
    ok(A, 3, "x"),
    failed(A, 3, "y"),
    failed(A, 0, "zz"),  # stored "ok" in the first batch
    ok(B, 6, "s", rag=True),
]


def rows(engine: Engine, experiment_id: int, table: str, columns: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = f"SELECT {columns} FROM {table} WHERE experiment_id = :e ORDER BY {columns}"
        return [tuple(r) for r in conn.execute(text(query), {"e": experiment_id})]


def test_a_batch_leaves_the_rows_of_its_records_stored_one_by_one(engine) -> None:
    experiment_id = new_experiment(engine)
    store(engine, experiment_id, FIRST, SECOND)
    expected = {
        (A.hash, 0): ("ok", "first", None, 1),
        (A.hash, 1): ("ok", "late", None, 1),
        (A.hash, 2): ("failed", "", "e2", 5),
        (A.hash, 3): ("ok", "x", None, 1),
        (B.hash, 0): ("ok", "one", None, 1),
        (B.hash, 5): ("ok", "r", None, 1),
        (B.hash, 6): ("ok", "s", None, 1),
    }
    uid = {f"{SUITE.name}/{c.id}": i for i, c in enumerate(SUITE.cases)}

    def stored() -> tuple[dict, dict, list]:
        columns = "config_hash, case_uid, status, output, error, attempts"
        generations = {
            (h, uid[u]): tuple(rest)
            for h, u, *rest in rows(engine, experiment_id, "generations", columns)
        }
        columns = "config_hash, case_uid, pipeline, calls"
        case_runs = {
            (h, uid[u]): tuple(rest)
            for h, u, *rest in rows(engine, experiment_id, "case_runs", columns)
        }
        columns = "config_hash, case_uid, position, stage, output"
        return generations, case_runs, rows(engine, experiment_id, "stages", columns)

    generations, case_runs, stages = stored()
    assert generations == expected
    assert set(case_runs) == {k for k, v in expected.items() if v[0] == "ok"}
    assert case_runs[(B.hash, 6)] == ("rag", 1)  # its own call: the embedding is shared
    assert len(stages) == 4 + 2 * 2  # a stage per single case, two per rag case
    store(engine, experiment_id, FIRST, SECOND, SECOND)  # a rerun re-storing: no change
    assert stored() == (generations, case_runs, stages)


def test_a_case_run_stored_by_another_run_keeps_its_stages(engine) -> None:
    """The case runs' insert returns the keys it stored; with many rows in one statement
    PostgreSQL's RETURNING has no set order: the stages follow the keys, not positions."""
    experiment_id = new_experiment(engine)
    other = [ok(A, i, f"other {i}", model="other:1b") for i in range(1, 40, 3)]
    store(engine, experiment_id, other)
    store(engine, experiment_id, [ok(A, i, f"mine {i}", model="mine:1b") for i in range(40)])
    with engine.connect() as conn:
        models = dict(
            conn.execute(
                text(
                    "SELECT g.case_uid, s.model || ' ' || g.output FROM generations g "
                    "JOIN stages s USING (experiment_id, config_hash, case_uid, sample_index) "
                    "WHERE g.experiment_id = :e"
                ),
                {"e": experiment_id},
            ).all()
        )
    assert len(models) == 40
    for i, case in enumerate(SUITE.cases):
        mine = "other:1b other" if i % 3 == 1 else "mine:1b mine"
        assert models[f"{SUITE.name}/{case.id}"] == f"{mine} {i}"


def test_postgresql_stores_the_same_values_as_sqlite(tmp_path, postgres) -> None:
    """Every column of every row, read back from both databases (bind processors,
    column defaults of the columns a failed generation leaves out, JSON, NULLs)."""
    stored = []
    for engine in (make_engine(f"sqlite:///{tmp_path / 'r.db'}", tables=RESULTS), postgres):
        experiment_id = new_experiment(engine)
        store(engine, experiment_id, FIRST, SECOND)
        with engine.connect() as conn:
            stored.append(
                [
                    sorted(
                        (
                            {
                                k: v
                                for k, v in row._mapping.items()
                                if k not in ("id", "experiment_id", "created_at")
                            }
                            for row in conn.execute(
                                select(model.__table__).where(
                                    model.__table__.c.experiment_id == experiment_id
                                )
                            )
                        ),
                        key=repr,
                    )
                    for model in (Generation, CaseRun, StageRow)
                ]
            )
    assert stored[0] == stored[1]
    generations, case_runs, stages = stored[0]
    assert [len(generations), len(case_runs), len(stages)] == [7, 6, 8]
    assert {g["ttft_s"] for g in generations} == {None}  # NULLs compared too
    assert {s["shared"] for s in stages} == {True, False}
    assert any(s["retrieved"] for s in stages) and any(r["meta"] for r in case_runs)


def test_rows_inserted_ignoring_conflicts_as_one_after_the_other(engine) -> None:
    """``insert_ignoring_conflicts`` (scores, cases, telemetry...), on PostgreSQL one
    statement of unnested arrays: a key twice in one call keeps the first row (DO
    NOTHING), or the first row with the last row's updated columns (DO UPDATE: merged,
    as one statement may not update a row twice)."""
    experiment_id = new_experiment(engine)
    key = {"experiment_id": experiment_id, "sample_index": 0, "created_at": STARTED}
    given = [
        key | {"config_hash": "c", "case_uid": "a", "calls": 1, "wall_s": 0.5},
        key | {"config_hash": "c", "case_uid": "b", "calls": 2, "wall_s": 1.5},
        key | {"config_hash": "c", "case_uid": "a", "calls": 3, "wall_s": 2.5},
        key | {"config_hash": "c", "case_uid": "a", "calls": 4, "wall_s": 3.5},
    ]
    with session_scope(engine) as session:
        insert_ignoring_conflicts(session, CaseRun, given)
        insert_ignoring_conflicts(
            session, CaseRun, [r | {"config_hash": "u"} for r in given], update_columns=["calls"]
        )
    assert rows(engine, experiment_id, "case_runs", "config_hash, case_uid, calls, wall_s") == [
        ("c", "a", 1, 0.5),
        ("c", "b", 2, 1.5),
        ("u", "a", 4, 0.5),
        ("u", "b", 2, 1.5),
    ]


def test_on_postgresql_a_batch_is_a_few_statements_whatever_its_size(postgres) -> None:
    """psycopg2 runs an executemany row by row (a round trip each): a batch's rows go as
    one statement per table instead, as many for 80 records as for 8."""
    sent: list[bool] = []

    def count(conn, cursor, statement, params, context, many: bool) -> None:
        sent.append(many)

    experiment_id = new_experiment(postgres)
    event.listen(postgres, "before_cursor_execute", count)
    counts = []
    try:
        for first, last in ((0, 4), (4, 40)):
            batch = [
                ok(c, i, "a") if i % 2 else failed(c, i, "e")
                for c in (A, B)
                for i in range(first, last)
            ]
            sent.clear()
            store(postgres, experiment_id, batch, batch)
            with session_scope(postgres) as session:  # e.g. the scores of a batch
                runs = [
                    {
                        "experiment_id": experiment_id,
                        "config_hash": "z",
                        "case_uid": r.item.case_uid,
                    }
                    for r in batch
                ]
                insert_ignoring_conflicts(session, CaseRun, runs)
            counts.append(len(sent))
            assert not any(sent), "an executemany"
    finally:
        event.remove(postgres, "before_cursor_execute", count)
    assert counts[0] == counts[1]


def test_on_sqlite_a_batch_goes_to_the_driver_without_sqlalchemys_rows(tmp_path) -> None:
    """SQLAlchemy's executemany builds each row's parameters in Python
    (``construct_params``: a quarter of the record writer's CPU, more than SQLite's own
    work): on SQLite a batch's rows go to sqlite3 as tuples (``storage.executemany``)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}", tables=RESULTS)
    experiment_id = new_experiment(engine)
    built: list[str] = []
    original = SQLCompiler.construct_params

    def construct_params(self, *args, **kwargs):
        built.append(self.string)
        return original(self, *args, **kwargs)

    SQLCompiler.construct_params = construct_params
    try:
        store(engine, experiment_id, FIRST, SECOND)
        with session_scope(engine) as session:  # e.g. the scores of a batch
            runs = [{"experiment_id": experiment_id, "config_hash": "z", "case_uid": "u"}]
            insert_ignoring_conflicts(session, CaseRun, runs)
    finally:
        SQLCompiler.construct_params = original
    assert built == []
    assert len(rows(engine, experiment_id, "stages", "case_uid")) == 8


def test_on_sqlite_the_rows_sent_straight_are_those_sqlalchemy_inserts(tmp_path) -> None:
    """Each column's bind processor (datetimes, JSON and JSON's None, booleans) and the
    defaults of the columns a row leaves out, as SQLAlchemy's own INSERT stores them."""
    key = {"config_hash": A.hash, "sample_index": 0}
    a, b = (f"{SUITE.name}/{SUITE.cases[i].id}" for i in (0, 1))
    given = {
        CaseRun: [
            key | {"case_uid": a, "pipeline": "rag", "wall_s": 0.5, "meta": {"k": [1, "é"]}},
            key | {"case_uid": b, "pipeline": "single", "wall_s": 1.0, "meta": None},
        ],
        StageRow: [
            key | {"case_uid": a, "position": 0, "stage": "answer", "kind": "generate",
                   "model": "m", "host": "h", "started_at": STARTED, "start_s": 0.0,
                   "duration_s": 0.25, "shared": True, "prompt": [["user", "q"]],
                   "retrieved": None},
            key | {"case_uid": b, "position": 1, "stage": "generate", "kind": "generate",
                   "model": "m", "host": "h", "started_at": STARTED, "start_s": 0.5,
                   "duration_s": 0.125, "shared": False, "prompt": None,
                   "retrieved": [{"chunk_id": "d#1", "score": 0.5}]},
        ],
        Generation: [  # a failed generation's columns: the others take their defaults
            key | {"case_uid": a, "host": "h", "attempts": 3, "created_at": STARTED,
                   "status": "failed", "error": "down", "output": ""},
        ],
    }  # fmt: skip
    stored = []
    for way in ("sqlalchemy", "driver"):
        engine = make_engine(f"sqlite:///{tmp_path / f'{way}.db'}", tables=RESULTS)
        experiment = {"experiment_id": new_experiment(engine)}
        with session_scope(engine) as session:
            connection = session.connection()
            for model, table_rows in given.items():
                table_rows = [experiment | row for row in table_rows]
                if way == "sqlalchemy":
                    connection.execute(insert(model.__table__), table_rows)
                else:
                    insert_many(connection, model.__table__, table_rows)
        with engine.connect() as conn:
            read = [conn.execute(select(model.__table__)).all() for model in given]
        assert all(r.created_at for r in read[0])  # the default: the time, not compared
        stored.append(
            [[{k: v for k, v in r._mapping.items() if k != "created_at"} for r in read[0]]]
            + [[r._mapping for r in t] for t in read[1:]]
        )
    assert stored[0] == stored[1]
