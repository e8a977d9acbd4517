"""Ratings as scores: averaged over raters, tested with scipy's own tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlmodel import Session

from evaluation.review.frames import ratings_frame
from evaluation.review.pairing import draw_pairs
from evaluation.review.scores import (
    compare_stars,
    pair_preferences,
    preference_test,
    rating_scores,
    star_summaries,
    store_rating_scores,
)
from evaluation.review.store import CRITERIA, record_pair_rating, save_pairs
from evaluation.storage.repository import generations_frame, scores_frame


def _star_rows(stars_x, stars_y, criterion="accuracy", rater="ann"):
    rows = []
    for i, (sx, sy) in enumerate(zip(stars_x, stars_y, strict=True)):
        for config, s, gid in (("x", sx, 2 * i), ("y", sy, 2 * i + 1)):
            rows.append(
                {
                    "rater": rater,
                    "generation_id": gid,
                    "criterion": criterion,
                    "stars": s,
                    "preference": None,
                    "config": config,
                    "case_id": f"c{i}",
                    "sample_index": 0,
                    "group": None,
                    "current": True,
                }
            )
    return pd.DataFrame(rows)


def test_stars_are_averaged_over_raters_and_mapped_to_unit_scale():
    ann = _star_rows([5, 3], [1, 2])
    bob = _star_rows([4, 3], [2, 2], rater="bob")
    stale = _star_rows([1, 1], [1, 1], rater="cy").assign(current=False)
    frame = rating_scores(pd.concat([ann, bob, stale]))
    x = frame[frame.config == "x"].set_index("case_id")
    assert x.loc["c0", "value"] == 4.5 and x.loc["c0", "n_raters"] == 2
    assert set(frame.metric) == {"human_accuracy"}
    unit = rating_scores(pd.concat([ann, bob]), scale="unit")
    assert np.allclose(unit["value"], (frame["value"] - 1) / 4)


def test_star_comparison_matches_scipy_sign_and_wilcoxon_tests():
    rng = np.random.default_rng(3)
    x = rng.integers(2, 6, size=30)
    y = np.clip(x - rng.integers(-1, 3, size=30), 1, 5)
    scores = rating_scores(_star_rows(x, y))
    result = compare_stars(scores, "x", "y", "accuracy")
    d = x - y
    assert (result.a_better, result.b_better, result.equal) == (
        int((d > 0).sum()),
        int((d < 0).sum()),
        int((d == 0).sum()),
    )
    expected_sign = stats.binomtest(int((d > 0).sum()), int((d != 0).sum()), 0.5).pvalue
    assert result.sign_p == pytest.approx(expected_sign)
    expected_wilcoxon = stats.wilcoxon(d, zero_method="pratt").pvalue
    assert result.wilcoxon.p_value == pytest.approx(expected_wilcoxon)
    assert result.wilcoxon.diff == pytest.approx(d.mean())


def test_summaries_give_mean_stars_with_an_interval():
    scores = rating_scores(_star_rows([5, 4, 3, 4], [1, 2, 2, 1]))
    summary = {(s.config, s.criterion): s for s in star_summaries(scores)}
    x = summary[("x", "accuracy")]
    assert x.n == 4 and x.mean == pytest.approx(4.0)
    # the t interval would be 4.0 ± 1.30, past 5 stars: on the 1–5 scale, the t interval
    # of logit((mean − 1)/4) with the delta-method SE, mapped back
    u, se_u = 0.75, np.std([5, 4, 3, 4], ddof=1) / 2 / 4
    half = stats.t.ppf(0.975, 3) * se_u / (u * (1 - u))
    logit = np.log(u / (1 - u))
    expected = [1 + 4 / (1 + np.exp(-(logit + side * half))) for side in (-1, 1)]
    assert x.ci == pytest.approx(expected)
    assert 1 < x.ci[0] < 4.0 < x.ci[1] < 5


def _prefs(votes):
    """votes: list of (pair_id, rater, config shown as A, config shown as B, preference)."""
    return pd.DataFrame(
        [
            {
                "pair_id": p,
                "rater": r,
                "criterion": "preference",
                "preference": v,
                "pair_config_a": a,
                "pair_config_b": b,
                "case_id": f"c{p}",
                "current": True,
            }
            for p, r, a, b, v in votes
        ]
    )


def test_preferences_count_once_per_pair_by_majority_and_match_binomtest():
    votes = [
        (1, "ann", "x", "y", "A"),
        (1, "bob", "x", "y", "A"),
        (1, "cy", "x", "y", "B"),
        (2, "ann", "y", "x", "B"),  # x shown as B and preferred
        (3, "ann", "x", "y", "A"),
        (3, "bob", "x", "y", "B"),  # split: a tie
        (4, "ann", "y", "x", "A"),
        (5, "ann", "x", "y", "tie"),
    ]
    for pair in range(6, 14):
        votes.append((pair, "ann", "x", "y", "A"))
    prefs = pair_preferences(_prefs(votes))
    assert len(prefs) == 13
    result = preference_test(prefs, "x", "y")
    assert (result.wins_a, result.wins_b, result.ties) == (10, 1, 2)
    expected = stats.binomtest(10, 11, 0.5)
    assert result.p_value == pytest.approx(expected.pvalue)
    ci = expected.proportion_ci(confidence_level=0.95, method="exact")
    assert result.ci == pytest.approx((ci.low, ci.high))
    swapped = preference_test(prefs, "y", "x")
    assert (swapped.wins_a, swapped.wins_b) == (1, 10)
    assert swapped.p_value == pytest.approx(result.p_value)


def test_stored_ratings_become_human_scores_for_the_selector(review_db):
    with Session(review_db.engine) as session:
        gens = generations_frame(session, review_db.experiment_id)
        configs = [c.hash for c in review_db.configs[:2]]
        draws = draw_pairs(gens, configs, per_pair=3, seed=0)
        pairs = save_pairs(
            session,
            review_db.experiment_id,
            [(d.case_uid, d.generation_a, d.generation_b) for d in draws],
        )
        for pair in pairs:
            stars = {"A": dict.fromkeys(CRITERIA, 5), "B": dict.fromkeys(CRITERIA, 1)}
            record_pair_rating(session, pair.id, rater="ann", stars=stars, preference="A")
        written = store_rating_scores(session, review_db.experiment_id)
        session.commit()
        assert written == {f"human_{c}": 6 for c in CRITERIA}
        scores = scores_frame(session, review_db.experiment_id)
        human = scores[scores.metric == "human_accuracy"].set_index("generation_id")["value"]
        shown_a = {p.generation_a for p in pairs}
        assert all(human[g] == (1.0 if g in shown_a else 0.0) for g in human.index)
        # a second call replaces, it does not add
        store_rating_scores(session, review_db.experiment_id)
        again = scores_frame(session, review_db.experiment_id)
        assert (again.metric == "human_accuracy").sum() == 6
        assert len(ratings_frame(session, review_db.experiment_id)) == 3 * 9
