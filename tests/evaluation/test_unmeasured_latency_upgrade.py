"""Issue 28.5, existing databases: a simulated pipeline case stored before the simulated
timeline kept the client's overhead as its latency. Opening the database turns those
latencies (and their config's stored latency aggregates) into "not measured"; latencies
laid over the slots, and real ones, stay, on SQLite and PostgreSQL alike; and once done,
finding nothing is a lookup in a partial index, not a scan of every case run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from evaluation.backends.base import GenerationResult
from evaluation.compare._leaderboard import aggregate_rows, load_leaderboard, render_markdown
from evaluation.metrics import get_metrics
from evaluation.pipelines._trace import CaseTrace, StageRecord
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.storage.db import make_engine
from evaluation.storage.models import Aggregate, Generation
from evaluation.storage.repository import (
    generations_frame,
    record_suite,
    register_experiment,
    replace_aggregates,
    save_generations,
    scores_frame,
)
from evaluation.storage.unmeasured import (
    _OVERHEAD_ROWS,
    OVERHEAD_CANDIDATE,
    forget_overhead_latencies,
)
from tests.support.databases import query_plan, sqlite_or_postgres
from tests.support.results_db import make_config, make_suite

OLD, LAID, REAL = make_config("old:1b"), make_config("laid:1b"), make_config("real:1b")
CALLS, CALL_S = 6, 5.0  # six simulated calls of 5 s each


def _record(config, case, latency_s: float, simulated: bool) -> GenerationRecord:
    stage = StageRecord("map", "generate", config.model, "h", datetime.now(UTC), 0.0, CALL_S)
    result = GenerationResult(
        "out",
        "stop",
        latency_s,
        None,
        total_duration_ns=int(CALLS * CALL_S * 1e9),
        simulated=simulated,
    )
    trace = CaseTrace("map_reduce", latency_s, (stage,) * CALLS)
    return GenerationRecord(WorkItem(config, case, "toy"), "h", 1, result, trace=trace)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres(request.param, tmp_path / "old.db", "evalflow_unmeasured")


def test_overhead_latencies_of_older_simulated_pipelines_become_not_measured(url):
    suite = make_suite(4)
    with Session(make_engine(url)) as session:
        record_suite(session, suite)
        experiment = register_experiment(
            session,
            name="older",
            suite=suite,
            configs=[OLD, LAID, REAL],
            spec={"name": "older"},
            spec_path="",
            samples_per_case=1,
            metrics=["exact_match"],
            simulated=True,
        )
        records = [
            r
            for case in suite.cases
            for r in (
                _record(OLD, case, 0.024, simulated=True),  # the client's overhead
                _record(LAID, case, 2 * CALL_S, simulated=True),  # laid over 4 slots
                _record(REAL, case, 0.024, simulated=False),  # a real fast server
            )
        ]
        save_generations(session, experiment.id, records)
        generations = generations_frame(session, experiment.id)
        rows = aggregate_rows(
            generations, scores_frame(session, experiment.id), get_metrics(["exact_match"]), suite
        )
        replace_aggregates(session, experiment.id, rows)
        session.commit()

    with Session(make_engine(url)) as session:  # opened again, as the next version does
        latency = {g.config_hash: g.latency_s for g in session.exec(select(Generation)).all()}
        assert latency == {OLD.hash: None, LAID.hash: 2 * CALL_S, REAL.hash: 0.024}
        p95 = {
            a.config_hash: a.mean
            for a in session.exec(select(Aggregate).where(Aggregate.metric == "latency_p95_s"))
        }
        assert p95[OLD.hash] is None and p95[LAID.hash] == 2 * CALL_S
        markdown = render_markdown(load_leaderboard(session, "older"))
    row = next(line for line in markdown.splitlines() if OLD.hash in line)
    assert "not measured" in row and "0.024" not in row


def _plan(url: str) -> str:
    """How the database plans the upgrade's search."""
    return query_plan(url, _OVERHEAD_ROWS.text)


def test_finding_none_is_a_lookup_in_a_partial_index(url):
    """Every open of a database looks for overhead latencies (`show` and `view`
    included): the search reads the generations through ``ix_generation_overhead_latency``,
    which holds no real generation, not every case run joined to its generation (50 ms at
    100,000 generations). It failed before the index: the case runs were scanned."""
    test_overhead_latencies_of_older_simulated_pipelines_become_not_measured(url)
    plan = _plan(url)
    assert "ix_generation_overhead_latency" in plan, plan
    engine = make_engine(url, create=False)
    with engine.connect() as connection:
        indexed = connection.execute(
            text(f"SELECT count(*) FROM generations WHERE {OVERHEAD_CANDIDATE}")
        ).scalar_one()
    engine.dispose()
    # LAID's cases: 6 calls of 5 s laid over 4 slots in 10 s, more than twice their latency
    assert indexed == 4
    assert forget_overhead_latencies(make_engine(url, create=False)) == 0


def test_an_older_database_gets_the_index_when_opened(tmp_path):
    """A database an older evalflow made, without the index: opened, it has it."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    make_engine(url).dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("DROP INDEX ix_generation_overhead_latency")
    assert "ix_generation_overhead_latency" not in _plan(url)
    make_engine(url).dispose()
    assert "ix_generation_overhead_latency" in _plan(url)
