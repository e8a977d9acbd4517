"""Issue 28.5, existing databases: a simulated pipeline case stored before the simulated
timeline kept the client's overhead as its latency. Opening the database turns those
latencies (and their config's stored latency aggregates) into "not measured"; latencies
laid over the slots, and real ones, stay."""

from __future__ import annotations

from datetime import UTC, datetime

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


def test_overhead_latencies_of_older_simulated_pipelines_become_not_measured(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
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
