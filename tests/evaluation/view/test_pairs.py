"""Two configs side by side: the case-by-case summary (A better on n cases, B on m, the
paired test's p) and word-level highlighting of where the outputs differ."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from evaluation.statistics.multiple import compare_many
from evaluation.storage.repository import scores_frame
from evaluation.view.pairs import pair_summary
from evaluation.view.worddiff import word_diff
from tests.support.review_db import build_review_db, output_for


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build_review_db(f"sqlite:///{tmp_path_factory.mktemp('pairs') / 'r.db'}", n_cases=8)


def test_the_summary_counts_the_cases_each_side_wins_and_runs_the_paired_test(db):
    a, b = db.configs[0].hash, db.configs[1].hash
    with Session(db.engine) as session:
        summary = pair_summary(session, db.experiment_id, a, b, "exact_match")
        scores = scores_frame(session, db.experiment_id)
    # config 0 answers every case right; config 1 misses the even cases (output_for)
    misses = {f"c{i:02d}" for i in range(8) if output_for(1, i).startswith("Town")}
    assert set(summary.a_better) == misses and summary.b_better == ()
    assert summary.tied == 8 - len(misses)
    expected = (
        compare_many(
            scores[scores.config.isin([a, b])], "exact_match", score_type="binary", configs=[a, b]
        )
        .comparisons[0]
        .comparison
    )
    assert summary.test == expected.test  # the test the comparison runs (clustered: groups)
    assert summary.p_value == pytest.approx(expected.p_value)
    assert summary.diff == pytest.approx(len(misses) / 8)
    reverse = pair_summary(Session(db.engine), db.experiment_id, b, a, "exact_match")
    assert set(reverse.b_better) == misses and reverse.diff == pytest.approx(-summary.diff)
    assert summary.diff_ci == pytest.approx(expected.diff_ci)
    assert reverse.diff_ci == pytest.approx((-expected.diff_ci[1], -expected.diff_ci[0]))


def test_word_diff_marks_only_the_words_one_side_lacks():
    left, right = word_diff("The capital is Paris, France.", "The capital is Lyon,  France.")
    assert [t for differs, t in left if differs] == ["Paris, "]
    assert [t for differs, t in right if differs] == ["Lyon,  "]
    assert "".join(t for _, t in right) == "The capital is Lyon,  France."  # as written
    same, _ = word_diff("a b c", "a b c")
    assert same == [(False, "a b c")]


def test_a_descriptive_metric_shows_differences_without_a_better_side(tmp_path):
    """output_length (neither higher nor lower is better) read "A better on 10 cases, B
    on 6 … (lower is better)", each case's difference coloured red or green."""
    from fastapi.testclient import TestClient

    from evaluation.metrics import get_metric
    from evaluation.view.app import create_app, diff_class

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=6)
    _score_output_length(
        db,
        lambda generations: (
            get_metric("output_length")
            .score(generations["output"].tolist(), [db.suite.cases[0]] * len(generations))
            .tolist()
        ),
    )
    a, b = db.configs[0].hash, db.configs[1].hash
    with Session(db.engine) as session:
        summary = pair_summary(session, db.experiment_id, a, b, "output_length")
    assert summary.descriptive and summary.b_better  # config 1's misses are longer
    page = TestClient(create_app(db.engine)).get(
        f"/e/{db.experiment}/compare", params={"a": a, "b": b, "metric": "output_length"}
    )
    assert page.status_code == 200
    shown = page.text[page.text.index('id="pair-summary"') :]
    section = shown.split("</section>")[0]
    assert "better on" not in section and "(lower is better" not in section
    assert "B higher on <b>" in shown and "neither higher nor lower is better" in shown
    assert 'class="cases-B"' not in shown
    assert '<span class="">output_length' in shown
    assert '<span class="pos">output_length' not in shown
    assert '<span class="neg">output_length' not in shown
    assert diff_class("output_length", 3.0) == ""
    assert (diff_class("exact_match", 1.0), diff_class("exact_match", -1.0)) == ("pos", "neg")


def test_one_case_is_a_case_not_cases(tmp_path):
    """A newcomer's side-by-side page read "A better on 1 cases"."""
    from fastapi.testclient import TestClient

    from evaluation.view.app import create_app

    two = build_review_db(f"sqlite:///{tmp_path / 'two.db'}", n_cases=2)  # c00 missed by B
    a, b = two.configs[0].hash, two.configs[1].hash
    page = TestClient(create_app(two.engine)).get(
        f"/e/{two.experiment}/compare", params={"a": a, "b": b, "metric": "exact_match"}
    )
    assert "A better on <b>1</b> case, B on <b>0</b>" in page.text


def test_equal_differences_on_a_scale_read_no_interval_not_a_point(tmp_path):
    """output_length 2 words longer for A on every case: was "+2.000 [95% CI +2.000,
    +2.000]", a certainty from 4 cases."""
    from fastapi.testclient import TestClient

    from evaluation.view.app import create_app

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=4)
    index = {c.hash: k for k, c in enumerate(db.configs)}
    _score_output_length(db, lambda g: [10.0 - 2 * index[h] for h in g["config_hash"]])
    a, b = db.configs[0].hash, db.configs[1].hash
    with Session(db.engine) as session:
        summary = pair_summary(session, db.experiment_id, a, b, "output_length")
    assert summary.diff == pytest.approx(2.0) and summary.diff_ci is None
    assert summary.no_interval.startswith("no interval: all 4 cases differ by this much")
    page = TestClient(create_app(db.engine)).get(
        f"/e/{db.experiment}/compare", params={"a": a, "b": b, "metric": "output_length"}
    )
    section = page.text[page.text.index('id="pair-summary"') :].split("</section>")[0]
    assert "(no interval: all 4 cases differ by this much" in section
    assert "95% CI" not in section


def _score_output_length(db, lengths) -> None:
    """Store output_length scores for every generation (``lengths``: of the generations
    frame) and add the metric to the experiment's."""
    from evaluation.storage.models import Experiment
    from evaluation.storage.repository import generations_frame, replace_scores

    with Session(db.engine) as session:
        generations = generations_frame(session, db.experiment_id)
        replace_scores(session, generations["id"].tolist(), "output_length", lengths(generations))
        experiment = session.get(Experiment, db.experiment_id)
        experiment.metrics = [*experiment.metrics, "output_length"]
        session.commit()
