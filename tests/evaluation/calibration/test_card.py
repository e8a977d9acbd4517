"""The judge's report card: each finding from stored verdicts, and the refusal to call a
judge calibrated on too few ratings."""

from __future__ import annotations

import pytest

from evaluation.calibration import card_text, judge_card
from evaluation.storage.db import session_scope
from tests.support.calibration_db import add_pairwise, build_calibration_db, judge_every_output
from tests.support.review_db import build_review_db

JUDGE = "ollama:alpha:1b"  # alpha:1b is also a model of the sweep


@pytest.fixture
def calib(database_url: str):
    db = build_calibration_db(database_url, judge=JUDGE)
    with session_scope(db.engine) as session:
        add_pairwise(session, db, judge=JUDGE)
    return db


def test_the_card_measures_each_bias(calib) -> None:
    with session_scope(calib.engine) as session:
        card = judge_card(session, calib.experiment_id, JUDGE)
    (offset,) = card.offset
    assert offset.n == 18 and offset.value == pytest.approx(5 / 36)  # 12 of 18 a star above
    assert offset.ci[0] > 0
    assert card.position.value == pytest.approx(0.75) and card.position.n == 24
    assert card.contradictions.n == 12  # each pair asked in both orders
    (mine,) = card.self_preference  # alpha:1b's outputs: +1 star; beta's: +1; gamma's: 0
    assert mine.value == pytest.approx(0.25 - 0.125, abs=0.05)
    assert card.drift == ()
    assert not card.calibrated("accuracy")
    text = card_text(card)
    assert "accuracy: NOT calibrated: 18 outputs people also rated, at least 30 needed" in text
    assert "chose the output shown first: 0.750" in text


def test_enough_ratings_make_it_calibrated(calib) -> None:
    with session_scope(calib.engine) as session:
        card = judge_card(session, calib.experiment_id, JUDGE, min_ratings=18)
    assert card.calibrated("accuracy")
    assert "accuracy: calibrated on 18 outputs people also rated" in card_text(card)


def test_drift_compares_the_same_outputs_in_another_run(calib, database_url: str) -> None:
    other = build_review_db(database_url, name="calib-night-2", n_cases=12)
    with session_scope(other.engine) as session:
        judge_every_output(session, other, 1, judge=JUDGE)
    with session_scope(calib.engine) as session:
        (drift,) = judge_card(session, calib.experiment_id, JUDGE).drift
    assert drift.n == 36 and drift.value > 0 and "1 other run(s)" in drift.note


def test_no_judge_is_refused_in_one_line(database_url: str, capsys) -> None:
    from flows.cli.app import main

    build_review_db(database_url)
    assert main(["--database", database_url, "judge-card", "toy-review"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: no judge has scored toy-review: run `evalflow judge toy-review --model M` first"
    ]


def _judged(database_url: str, stars: int | None, reason: str = ""):
    """toy-review judged by JUDGE (whose model is a model of the sweep): every output
    given ``stars`` (None: unscored, for ``reason``); nobody rated any."""
    db = build_review_db(database_url)
    with session_scope(db.engine) as session:
        judge_every_output(session, db, stars, judge=JUDGE, reason=reason)
    return db


def test_a_judge_that_scored_nothing_says_so_without_empty_sections(
    database_url: str, capsys
) -> None:
    """The newcomer's F15: a judge whose every verdict was junk got a card of empty
    headings and "the judge's model is not a model of this sweep", false (it was)."""
    from flows.cli.app import main

    junk = 'malformed judge output (the rationale has no words): \'{ "rationale": "]["\''
    _judged(database_url, None, junk)
    assert main(["--database", database_url, "judge-card", "toy-review"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(
        f"Judge {JUDGE}: nothing to report on toy-review: the judge scored nothing yet ("
    )
    assert f"verdict(s) unscored, all: {junk})" in out
    assert "judge with a larger model, `evalflow judge toy-review --model M`" in out
    assert "not a model of this sweep" not in out and "Agreement" not in out
    assert len(out.splitlines()) == 1


def test_a_judge_of_the_sweeps_model_without_ratings_is_not_called_outside_it(
    database_url: str,
) -> None:
    db = _judged(database_url, 4)
    with session_scope(db.engine) as session:
        text = card_text(judge_card(session, db.experiment_id, JUDGE))
    assert "not a model of this sweep" not in text
    assert "alpha:1b is a model of this sweep, but no output of the sweep has both" in text
