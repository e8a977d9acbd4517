"""Baselines, the regression check's stored inputs and the selector's training frame,
on a results database built through the repository functions."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from evaluation.backends.base import ModelInfo
from evaluation.compare._regression import check_regression, load_run
from evaluation.errors import StorageError
from evaluation.run._gpu import GpuTelemetry
from evaluation.run._telemetry import ConfigGpu
from evaluation.storage.baselines import accept_baseline, accepted_baseline
from evaluation.storage.db import insert_ignoring_conflicts, make_engine, session_scope
from evaluation.storage.models import CaseRun, Experiment, StageRow
from evaluation.storage.repository import record_models, set_experiment_status
from evaluation.storage.telemetry import save_config_telemetry
from evaluation.storage.training import task_measured, training_frame, training_generations
from selection import quality_metric, validate_training_frame
from selection.frame import REQUIRED_COLUMNS
from tests.support.results_db import add_experiment, make_config, make_suite

SUITE = make_suite(6)
A, B = make_config("m:1b", 0.0), make_config("m:1b", 0.7)


@pytest.fixture
def engine(database_url):
    return make_engine(database_url)


def add(session: Session, name: str, series: str, *, status="completed", **kw) -> Experiment:
    scores = kw.pop("scores", {A: {"exact_match": [1, 0, 1, 1, 0, 1]}})
    experiment = add_experiment(session, name, SUITE, scores, **kw)
    experiment.spec = {"name": series}
    session.add(experiment)
    set_experiment_status(session, experiment.id, status)
    return experiment


def test_one_accepted_baseline_per_series(engine):
    with session_scope(engine) as session:
        add(session, "qa-1", "qa")
        add(session, "qa-2", "qa")
        add(session, "other-1", "other")
        assert accepted_baseline(session, "qa") is None
        first = accept_baseline(session, "qa-1")
        accept_baseline(session, "other-1")
        second = accept_baseline(session, "qa-2")
        assert (first.replaced, second.replaced, second.series) == (None, "qa-1", "qa")
        assert accepted_baseline(session, "qa") == "qa-2"
        assert accepted_baseline(session, "qa", exclude="qa-2") is None
        assert accepted_baseline(session, "other") == "other-1"


def test_an_unfinished_experiment_cannot_be_the_baseline(engine):
    with session_scope(engine) as session:
        add(session, "qa-1", "qa", status="running")
        with pytest.raises(StorageError, match="running, not completed: wait for it to finish"):
            accept_baseline(session, "qa-1")


def test_load_run_reads_scores_generations_and_gpu_utilisation(engine):
    with session_scope(engine) as session:
        run = add(
            session, "now", "qa", scores={A: {"exact_match": [1] * 6}, B: {"exact_match": [0] * 6}}
        )
        measured = ConfigGpu(GpuTelemetry(20.0, 1, 1.0, "energy_counter"))
        unmeasured = ConfigGpu(GpuTelemetry(None, None, None, "unavailable"), 123)
        save_config_telemetry(session, run.id, {A.hash: measured, B.hash: unmeasured})
        data = load_run(session, "now")
    assert data.gpu_util == {A.hash: 20.0}
    assert data.labels == {A.hash: A.label, B.hash: B.label}
    assert set(data.scores["config"]) == {A.hash, B.hash}
    report = check_regression(data, None)
    assert [(a.rule, a.config) for a in report.alerts] == [("gpu_utilisation", A.hash)]


def test_training_frame_has_the_selector_columns(engine):
    with session_scope(engine) as session:
        record_models(session, "h", [ModelInfo("m:1b", "d1", "llama", "1.2B", "Q4_K_M", 10**10)])
        real = add(session, "real", "qa", scores={A: {"exact_match": [1, 0, 1, 1, 0, 1]}})
        add(session, "sim", "qa", simulated=True, scores={B: {"exact_match": [1] * 6}})
        add(session, "bleu", "qa", scores={B: {"bleu": [50.0] * 6}})
        save_config_telemetry(
            session, real.id, {A.hash: ConfigGpu(GpuTelemetry(90.0, 1, 7.5, "energy_counter"))}
        )
        frame = training_frame(session, quality_metric)
        with_simulated = training_frame(session, quality_metric, include_simulated=True)

    assert set(REQUIRED_COLUMNS) <= set(frame.columns)
    validate_training_frame(frame)
    assert set(frame["experiment"]) == {"real", "bleu"}
    assert set(with_simulated["experiment"]) == {"real", "sim", "bleu"}
    real_rows = frame[frame["experiment"] == "real"].sort_values("case_id")
    assert real_rows["quality"].tolist() == [1, 0, 1, 1, 0, 1]
    assert (real_rows["energy_j"] == 7.5).all()  # from config_telemetry
    assert real_rows[["family", "parameter_size", "quantization"]].iloc[0].tolist() == [
        "llama",
        "1.2B",
        "Q4_K_M",
    ]
    assert (frame[frame["experiment"] == "bleu"]["quality"] == 0.5).all()  # 0-100 scaled
    assert math.isnan(frame[frame["experiment"] == "bleu"]["energy_j"].iloc[0])
    assert set(frame["status"]) == {"ok"} and set(frame["task_type"]) == {"qa"}


def test_training_frame_carries_each_cases_group(engine):
    """The measured quality's interval clusters by case group, as `evalflow show` does."""
    grouped = make_suite(4, name="grouped", groups=["p", "p", "q", None])
    with session_scope(engine) as session:
        add_experiment(session, "grouped", grouped, {A: {"exact_match": [1, 0, 1, 1]}})
        frame = training_frame(session, quality_metric)
    rows = validate_training_frame(frame).sort_values("case_id")
    assert rows["case_group"].iloc[:3].tolist() == ["p", "p", "q"]
    assert pd.isna(rows["case_group"].iloc[3])  # in no group


def test_training_frame_carries_the_prompt_tokens_the_server_reported(engine):
    with session_scope(engine) as session:
        add_experiment(session, "real", SUITE, {A: {"exact_match": [1, 0, 1, 1, 0, 1]}})
        first = session.connection().execute(text("SELECT MIN(id) FROM generations")).scalar()
        session.connection().execute(
            text("UPDATE generations SET prompt_eval_count = 512 WHERE id = :id"), {"id": first}
        )
        frame = training_frame(session, quality_metric)
    counts = validate_training_frame(frame)["prompt_tokens"]
    assert counts.tolist().count(512.0) == 1 and counts.isna().sum() == len(counts) - 1


def test_training_frame_says_which_metric_each_experiments_quality_is(engine):
    """Each experiment's quality is its own first metric; the frame says which, so an
    answer can name it, and warn where a task type's experiments differ."""
    with session_scope(engine) as session:
        add_experiment(session, "exact", SUITE, {A: {"exact_match": [1, 0, 1, 1, 0, 1]}})
        add_experiment(
            session, "lenient", make_suite(6, name="other"), {B: {"contains": [1, 1, 1, 1, 0, 1]}}
        )
        frame = training_frame(session, quality_metric)
    by_experiment = frame.groupby("experiment")["quality_metric"].unique()
    assert by_experiment["exact"].tolist() == ["exact_match"]
    assert by_experiment["lenient"].tolist() == ["contains"]


def test_inserting_rows_of_several_shapes_keeps_their_order_and_conflicts(engine) -> None:
    """``insert_ignoring_conflicts`` runs each run of same-column rows as one statement:
    rows of other columns between them, the first stored row of a key kept (DO NOTHING),
    an update's columns replaced (DO UPDATE), defaults where a row leaves a column out."""
    with session_scope(engine) as session:
        experiment_id = add(session, "shapes", "s").id
    key = {"experiment_id": experiment_id, "config_hash": "c", "sample_index": 0}
    now = {"created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    rows = [
        key | now | {"case_uid": "a", "calls": 1},
        key | now | {"case_uid": "b", "calls": 2, "wall_s": 0.5},
        key | now | {"case_uid": "c", "calls": 3},
        key | now | {"case_uid": "a", "calls": 9, "wall_s": 9.0},  # a conflict: ignored
    ]
    with session_scope(engine) as session:
        insert_ignoring_conflicts(session, CaseRun, rows)
    with session_scope(engine) as session:
        again = [key | now | {"case_uid": "b", "calls": 7}, key | now | {"case_uid": "d"}]
        insert_ignoring_conflicts(session, CaseRun, again, update_columns=["calls"])
    with session_scope(engine) as session:
        stored = {
            r.case_uid: (r.calls, r.wall_s)
            for r in session.exec(select(CaseRun).where(CaseRun.experiment_id == experiment_id))
        }
    assert stored == {"a": (1, 0.0), "b": (7, 0.5), "c": (3, 0.0), "d": (0, 0.0)}


def test_a_batch_of_generations_compiles_no_insert(engine, monkeypatch) -> None:
    """SQLAlchemy caches no INSERT ... ON CONFLICT (it compiled one per batch): the
    generation upserts and the case runs' and stages' inserts go to the driver as SQL
    written once per shape of rows (``storage.executemany``, ``storage.unnest``), none
    compiled; a batch stored again (a rerun after a kill) changes nothing: one
    generation, case run and stage per key, and a stage stored without its case run is
    replaced."""
    from sqlalchemy.sql import compiler

    from evaluation.backends.base import GenerationResult
    from evaluation.pipelines._trace import CaseTrace, StageRecord
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.storage.repository import save_generations

    with session_scope(engine) as session:
        scores = {c: {"exact_match": [1, 0, 1, 1, 0, 1]} for c in (A, B)}
        experiment_id = add(session, "batches", "s", scores=scores).id
    started = datetime(2026, 1, 1, tzinfo=UTC)

    def batch(config, error: bool) -> list[GenerationRecord]:
        records = []
        for case in SUITE.cases:
            item = WorkItem(config, case, SUITE.name, 1)
            if error:
                records.append(GenerationRecord(item, "h", 2, error="down"))
                continue
            stage = StageRecord("generate", "generate", config.model, "h", started, 0.0, 0.1)
            trace = CaseTrace("single", 0.1, (stage,))
            result = GenerationResult("out", "stop", 0.1, None)
            records.append(GenerationRecord(item, "h", 1, result, trace=trace))
        return records

    inserts_compiled = []
    init = compiler.SQLCompiler.__init__

    def counting(self, dialect, statement, *args, **kwargs) -> None:
        if statement is not None and statement.is_insert:
            inserts_compiled.append(statement.table.name)
        init(self, dialect, statement, *args, **kwargs)

    stale = {"config_hash": A.hash, "case_uid": f"{SUITE.name}/{SUITE.cases[0].id}"}
    with session_scope(engine) as session:  # a stage without its case run: replaced
        session.add(StageRow(experiment_id=experiment_id, sample_index=1, stage="x", **stale))
    monkeypatch.setattr(compiler.SQLCompiler, "__init__", counting)
    with session_scope(engine) as session:
        save_generations(session, experiment_id, batch(A, False) + batch(B, True))
    with session_scope(engine) as session:
        save_generations(session, experiment_id, batch(B, False) + batch(A, True))
    with session_scope(engine) as session:
        save_generations(session, experiment_id, batch(A, False) + batch(B, False))
    assert inserts_compiled == []
    with engine.connect() as conn:
        counts = [
            conn.execute(
                text(
                    f"SELECT COUNT(*), COUNT(DISTINCT config_hash || case_uid) FROM {table} "
                    "WHERE experiment_id = :e AND sample_index = 1"
                ),
                {"e": experiment_id},
            ).one()
            for table in ("generations", "case_runs", "stages")
        ]
        statuses = conn.execute(
            text(
                "SELECT status, COUNT(*) FROM generations WHERE experiment_id = :e "
                "AND sample_index = 1 GROUP BY status"
            ),
            {"e": experiment_id},
        ).all()
        stale_left = conn.execute(text("SELECT COUNT(*) FROM stages WHERE stage = 'x'")).scalar()
    assert counts == [(12, 12), (12, 12), (12, 12)]
    assert statuses == [("ok", 12)]
    assert stale_left == 0


def test_batches_of_any_size_store_their_case_runs_in_a_few_statement_shapes(engine) -> None:
    """The case runs' INSERT ... RETURNING goes in pages of a power of two rows: batches
    of 1 to 20 records make 5 shapes of statement (16, 8, 4, 2, 1 rows), not one a
    size; SQLite keeps each shape prepared on each connection, so with one shape a
    batch a 100,000-generation run's process grew by ~100 MiB. Every key is stored
    once, with its stage."""
    from sqlalchemy import event

    from evaluation.backends.base import GenerationResult
    from evaluation.pipelines._trace import CaseTrace, StageRecord
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.storage.repository import save_generations

    with session_scope(engine) as session:
        experiment_id = add(session, "shapes", "s").id
    started = datetime(2026, 1, 1, tzinfo=UTC)
    records = []
    for sample in range(2, 37):
        for case in SUITE.cases:
            stage = StageRecord("generate", "generate", A.model, "h", started, 0.0, 0.1)
            result = GenerationResult("out", "stop", 0.1, None)
            item = WorkItem(A, case, SUITE.name, sample)
            records.append(
                GenerationRecord(item, "h", 1, result, trace=CaseTrace("single", 0.1, (stage,)))
            )
    shapes: set[str] = set()

    def seen(conn, cursor, statement: str, *args) -> None:
        if statement.startswith("INSERT INTO case_runs"):
            shapes.add(statement)

    event.listen(engine, "before_cursor_execute", seen)
    start = 0
    for size in range(1, 21):  # 210 records
        with session_scope(engine) as session:
            save_generations(session, experiment_id, records[start : start + size])
        start += size
    event.remove(engine, "before_cursor_execute", seen)
    assert len(shapes) == 5
    with engine.connect() as conn:
        counts = [
            conn.execute(
                text(
                    f"SELECT COUNT(*), COUNT(DISTINCT case_uid || '/' || sample_index) "
                    f"FROM {table} WHERE experiment_id = :e AND sample_index > 1"
                ),
                {"e": experiment_id},
            ).one()
            for table in ("generations", "case_runs", "stages")
        ]
    assert counts == [(210, 210)] * 3


def test_training_leaves_out_the_generations_a_live_run_has_not_scored(engine):
    """A retrain while a run went on took a real config's unscored generations for its
    latency alone: `recommend` then called that config "never run on this task type",
    and once its scores were stored never listed it among those the version never saw."""
    with session_scope(engine) as session:
        add(session, "done", "qa", scores={A: {"exact_match": [1, 0, 1, 1, 0, 1]}})
        live = add(
            session,
            "live",
            "qa",
            status="running",
            scores={A: {"exact_match": [1] * 6}, B: {"exact_match": [0] * 6}},
        )
        unscored = text(
            "DELETE FROM scores WHERE generation_id IN (SELECT id FROM generations "
            "WHERE experiment_id = :id AND (config_hash = :b OR case_uid IN "
            "(SELECT uid FROM cases WHERE case_id IN ('c003', 'c004', 'c005'))))"
        )
        session.connection().execute(unscored, {"id": live.id, "b": B.hash})
        frame = training_frame(session, quality_metric)
        counted = training_generations(session)
        measured = task_measured(session, "qa")

    live_rows = frame[frame["experiment"] == "live"]
    assert set(live_rows["config_hash"]) == {A.hash}  # B: nothing scored yet
    assert sorted(live_rows["case_id"]) == ["c000", "c001", "c002"]
    assert live_rows["quality"].notna().all() and len(frame) == 9 == counted
    assert dict(zip(measured["config_hash"], measured["n"], strict=True)) == {A.hash: 9}
