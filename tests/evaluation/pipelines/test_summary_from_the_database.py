"""The leaderboard's pipeline summary is summed by the database (a few rows per config
and stage, whatever the run's size): it equals the summary made from every case run and
stage row, order of the stages included."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from evaluation.pipelines.summary import summarize_pipelines
from evaluation.storage import stages as stored_stages
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment, SuiteRow, utcnow
from evaluation.storage.stages import (
    case_runs_frame,
    pipeline_summary,
    stages_frame,
    store_pipeline_summary,
    stored_pipeline_summary,
)
from tests.support.databases import sqlite_or_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """The sums are SQL (window functions, COALESCE): both databases evalflow supports."""
    yield from sqlite_or_postgres(request.param, tmp_path / "results.db", "pipeline_sums")


RUNS = [  # (config, case, pipeline, calls, wall_s, context_truncated_calls)
    ("a", "c1", "rag", 2, 1.5, 0),
    ("a", "c2", "rag", 2, 0.5, 1),
    ("a", "c3", "rag", 3, 4.0, 0),
    ("a", "c4", "rag", 2, 2.0, 2),  # four runs: the median is between the middle two
    ("b", "c1", "sections", 2, 3.0, 0),
    ("b", "c2", "sections", 2, 1.0, 0),
    ("b", "c3", "sections", 2, 2.0, 0),
    ("s", "c1", "single", 1, 0.25, 0),
]
CALLS = [  # (config, case, position, stage, shared, duration_s, wait_s, prompt_tokens)
    ("a", "c1", 0, "retrieve", False, 0.5, 0.0, 10),
    ("a", "c1", 1, "answer", False, 1.0, 0.25, 20),
    ("a", "c2", 0, "embed", True, 2.0, None, 5),  # the corpus's, once for the run
    ("a", "c2", 1, "embed", True, 2.0, None, 5),
    ("a", "c2", 2, "retrieve", False, 0.5, 0.5, 10),
    ("a", "c2", 3, "answer", False, 1.0, None, None),  # a count the server did not give
    ("a", "c3", 0, "retrieve", False, 0.5, 0.0, 10),
    ("a", "c3", 1, "answer", False, 1.0, 0.0, 20),
    ("a", "c4", 0, "retrieve", False, 0.5, 0.0, 10),
    ("a", "c4", 1, "answer", False, 1.0, 0.0, 20),
    # b's sections run at once: each is first in half the cases (equal mean places),
    # so the one seen first stays first
    ("b", "c1", 0, "summary", False, 1.0, None, 8),
    ("b", "c1", 1, "risks", False, 1.0, None, 8),
    ("b", "c1", 2, "assembly", False, 0.5, None, 8),
    ("b", "c2", 0, "risks", False, 1.0, None, 8),
    ("b", "c2", 1, "summary", False, 1.0, None, 8),
    ("b", "c2", 2, "assembly", False, 0.5, None, 8),
    ("s", "c1", 0, "generate", None, 0.25, 0.0, 7),  # shared unknown: stored before it was
]


def test_the_databases_sums_are_the_summary_of_every_row(url):
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.add(SuiteRow(name="s", version="1", task_type="qa"))
        session.add(Experiment(id=1, name="e", suite="s", task_type="qa"))
    now = utcnow()
    with engine.begin() as connection:
        for config, case, pipeline, calls, wall, cut in RUNS:
            connection.execute(
                text(
                    "INSERT INTO case_runs (experiment_id, config_hash, case_uid, sample_index, "
                    "pipeline, wall_s, calls, context_truncated_calls, created_at) "
                    "VALUES (1, :config, :case, 0, :pipeline, :wall, :calls, :cut, :now)"
                ),
                dict(
                    config=config,
                    case=case,
                    pipeline=pipeline,
                    wall=wall,
                    calls=calls,
                    cut=cut,
                    now=now,
                ),
            )
        for config, case, position, stage, shared, duration, wait, prompt in reversed(CALLS):
            connection.execute(
                text(
                    "INSERT INTO stages (experiment_id, config_hash, case_uid, sample_index, "
                    "position, stage, kind, model, host, started_at, start_s, duration_s, "
                    "prompt_tokens, output_tokens, estimated_prompt_tokens, attempts, "
                    "context_truncated, wait_s, shared) "
                    "VALUES (1, :config, :case, 0, :position, :stage, 'generate', 'm', 'h', "
                    ":now, 0, :duration, :prompt, 3, 0, 1, false, :wait, :shared)"
                ),
                dict(
                    config=config,
                    case=case,
                    position=position,
                    stage=stage,
                    now=now,
                    duration=duration,
                    prompt=prompt,
                    wait=wait,
                    shared=shared,
                ),
            )
    with session_scope(engine) as session:
        summed = pipeline_summary(session, 1)
        expected = summarize_pipelines(case_runs_frame(session, 1), stages_frame(session, 1))
        store_pipeline_summary(session, 1)  # as the run's end does
    with session_scope(engine) as session:
        assert stored_pipeline_summary(session, 1) == summed  # read back through JSON
    pd.testing.assert_frame_equal(
        summed.configs.sort_index(), expected.configs.sort_index(), check_dtype=False
    )
    pd.testing.assert_frame_equal(summed.stages, expected.stages, check_dtype=False)
    assert list(zip(summed.stages["config"], summed.stages["stage"], strict=True)) == [
        ("a", "retrieve"),
        ("a", "answer"),
        ("b", "summary"),
        ("b", "risks"),
        ("b", "assembly"),
        ("s", "generate"),
        ("shared (run total)", "embed"),
    ]
    assert summed.configs.at["a", "wall_p50_s"] == 1.75
    assert summed.multi_call and summed.any_truncated


def test_an_experiment_without_case_runs_has_no_pipelines(url):
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.add(SuiteRow(name="s", version="1", task_type="qa"))
        session.add(Experiment(id=1, name="e", suite="s", task_type="qa"))
    with session_scope(engine) as session:
        summary = pipeline_summary(session, 1)
    assert summary.configs.empty and summary.stages.empty and not summary.multi_call


def test_the_stored_summary_is_read_back_until_a_case_run_is_added(tmp_path, monkeypatch):
    """`show` reads the summary the run's end stored (no sums over every case run) while
    the case runs and stages are the ones it was made from; then it sums them again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'results.db'}")
    with session_scope(engine) as session:
        session.add(SuiteRow(name="s", version="1", task_type="qa"))
        session.add(Experiment(id=1, name="e", suite="s", task_type="qa"))
    add = text(
        "INSERT INTO case_runs (experiment_id, config_hash, case_uid, sample_index, pipeline, "
        "wall_s, calls, context_truncated_calls, created_at) "
        "VALUES (1, 'a', :case, 0, 'rag', :wall, 2, 0, :now)"
    )
    with engine.begin() as connection:
        connection.execute(add, {"case": "c1", "wall": 1.0, "now": utcnow()})
    with session_scope(engine) as session:
        store_pipeline_summary(session, 1)
    summed: list[int] = []
    summing = stored_stages.pipeline_summary
    monkeypatch.setattr(
        stored_stages, "pipeline_summary", lambda s, e: summed.append(e) or summing(s, e)
    )
    with session_scope(engine) as session:
        assert stored_pipeline_summary(session, 1).by_config["a"]["wall_p50_s"] == 1.0
    assert summed == []
    with engine.begin() as connection:  # a resumed run adds a case
        connection.execute(add, {"case": "c2", "wall": 3.0, "now": utcnow()})
    with session_scope(engine) as session:
        assert stored_pipeline_summary(session, 1).by_config["a"]["wall_p50_s"] == 2.0
    assert summed == [1]
