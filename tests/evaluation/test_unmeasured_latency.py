"""Issue 28.5: a latency that was not measured (stored as None) reads "not measured" in
every output and gets no verdict: the leaderboard, the report and its summary, the
Pareto front, the comparison, the export and the selector's training data."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlmodel import Session

from evaluation.compare._comparison import compare_experiment
from evaluation.compare._leaderboard import load_leaderboard, render_markdown, render_text
from evaluation.export import level_frame
from evaluation.report import gather, render_report
from evaluation.report.summary import render_summary
from evaluation.storage.db import make_engine
from evaluation.storage.repository import get_experiment
from evaluation.storage.training import training_frame
from tests.support.results_db import add_experiment, make_config, make_suite

TIMED, UNTIMED = make_config("timed:1b"), make_config("untimed:1b")


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(make_engine("sqlite://"), expire_on_commit=False) as s:
        add_experiment(
            s,
            "gaps",
            make_suite(12),
            {TIMED: {"exact_match": [1.0, 0.0] * 6}, UNTIMED: {"exact_match": [1.0] * 12}},
            latency={TIMED: [0.5 + 0.01 * i for i in range(12)], UNTIMED: [None] * 12},
        )
        yield s


def _row(text: str, config: str) -> str:
    return next(line for line in text.splitlines() if config in line)


def test_leaderboards_say_not_measured_where_no_latency_was_stored(session):
    board = load_leaderboard(session, "gaps")
    markdown, text = render_markdown(board), render_text(board, wide=True)
    for shown in (markdown, text):
        assert "not measured" in _row(shown, UNTIMED.hash)
        assert "not measured" not in _row(shown, TIMED.hash)
    assert _row(markdown, UNTIMED.hash).count("not measured") == 2  # p50 and p95


def test_the_report_and_its_pareto_front_leave_the_unmeasured_config_unplaced(session):
    data = gather(session, "gaps")
    latency_front = next(f for f in data.fronts if f.cost == "latency_p95_s")
    assert UNTIMED.hash not in latency_front.configs
    assert f"latency_p95_s not measured for {UNTIMED.hash}" in latency_front.note
    html = render_report(data)
    assert "not measured" in html
    summary = render_summary(data, links={})
    assert "not measured" in _row(summary, UNTIMED.hash)


def test_no_verdict_on_latency_and_no_number_in_the_export_or_training_data(session):
    outcome = compare_experiment(session, "gaps")
    assert "wins on latency_s" not in outcome.markdown
    assert any("latency_s: not measured for" in note for note in outcome.notes)
    exported = level_frame(session, get_experiment(session, "gaps"), "generations")
    untimed = exported[exported["config_hash"] == UNTIMED.hash]
    assert untimed["latency_s"].isna().all()
    rows = training_frame(session, lambda task, metrics: "exact_match")
    by_config = rows.set_index("config_hash")["latency_s"]
    assert np.isnan(by_config.loc[UNTIMED.hash]).all()
    assert (by_config.loc[TIMED.hash] > 0).all()
