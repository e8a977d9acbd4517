"""Agreement statistics against scikit-learn's and scipy's own values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from evaluation.review.agreement import (
    _kappa_batch,
    _weight_matrix,
    inter_rater_agreement,
    judge_human_agreement,
    weighted_kappa,
)


def _raters(n, seed, noise=1):
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, size=n)
    b = np.clip(a + rng.integers(-noise, noise + 1, size=n), 1, 5)
    return a, b


@pytest.mark.parametrize("weights", ["quadratic", "linear"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_kappa_is_sklearns(weights, seed):
    a, b = _raters(40, seed)
    result = weighted_kappa(a, b, weights=weights, n_resamples=500, seed=seed)
    expected = cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights=weights)
    assert result.kappa == pytest.approx(expected)
    assert result.n == 40 and result.weights == weights
    low, high = result.ci
    assert low < result.kappa < high


def test_the_vectorised_bootstrap_kappa_is_sklearns_on_every_resample():
    a, b = _raters(25, 5, noise=2)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 25, size=(20, 25))
    batch = _kappa_batch(a[idx] - 1, b[idx] - 1, _weight_matrix(5, "quadratic"))
    expected = [
        cohen_kappa_score(a[i], b[i], labels=[1, 2, 3, 4, 5], weights="quadratic") for i in idx
    ]
    assert batch == pytest.approx(expected)


def test_the_bootstrap_interval_is_seeded():
    a, b = _raters(30, 9)
    first = weighted_kappa(a, b, n_resamples=300, seed=4)
    assert first.ci == weighted_kappa(a, b, n_resamples=300, seed=4).ci
    assert first.ci != weighted_kappa(a, b, n_resamples=300, seed=5).ci


def test_kappa_undefined_cases_are_reported_not_warned():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = weighted_kappa([4, 4, 4, 4], [4, 4, 4, 4])
        one = weighted_kappa([3], [3])
    assert same.kappa is None and "same grade" in same.note
    assert one.kappa is None and "1 shared item" in one.note
    with pytest.raises(ValueError, match="not among the labels"):
        weighted_kappa([0, 1], [1, 2])


def test_inter_rater_agreement_uses_the_generations_both_rated():
    a, b = _raters(30, 3)
    rows = [
        {"rater": r, "generation_id": g, "criterion": "accuracy", "stars": s, "current": True}
        for r, stars in (("ann", a), ("bob", b))
        for g, s in enumerate(stars)
    ]
    rows += [  # only ann rated these, and a replaced rating of bob
        {
            "rater": "ann",
            "generation_id": 100 + g,
            "criterion": "accuracy",
            "stars": 1,
            "current": True,
        }
        for g in range(5)
    ]
    rows.append(
        {"rater": "bob", "generation_id": 0, "criterion": "accuracy", "stars": 5, "current": False}
    )
    (result,) = inter_rater_agreement(pd.DataFrame(rows))
    assert (result.rater_a, result.rater_b, result.criterion, result.n) == (
        "ann",
        "bob",
        "accuracy",
        30,
    )
    expected = cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights="quadratic")
    assert result.kappa == pytest.approx(expected)


def test_judge_human_agreement_is_spearman_with_a_fisher_z_interval():
    rng = np.random.default_rng(11)
    n = 40
    human_a = rng.integers(1, 6, size=n)
    human_b = np.clip(human_a + rng.integers(-1, 2, size=n), 1, 5)
    judge = np.clip(human_a + rng.integers(-2, 3, size=n), 1, 5)
    human = pd.DataFrame(
        {
            "generation_id": np.tile(np.arange(n), 2),
            "criterion": "accuracy",
            "stars": np.concatenate([human_a, human_b]),
        }
    )
    judged = pd.DataFrame(
        {
            "generation_id": np.arange(n + 1),
            "criterion": "accuracy",
            "stars": [*judge.astype(float), np.nan],
        }
    )
    (result,) = judge_human_agreement(human, judged)
    mean_human = (human_a + human_b) / 2
    expected = stats.spearmanr(judge, mean_human)
    assert result.n == n
    assert result.rho == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    half = stats.norm.ppf(0.975) * math.sqrt(1.06 / (n - 3))
    z = math.atanh(expected.statistic)
    assert result.ci == pytest.approx((math.tanh(z - half), math.tanh(z + half)))


def test_judge_human_agreement_needs_shared_criteria_and_enough_items():
    human = pd.DataFrame({"generation_id": [1, 2], "criterion": "speed", "stars": [3, 4]})
    judge = pd.DataFrame({"generation_id": [1, 2], "criterion": "accuracy", "stars": [3, 4]})
    assert judge_human_agreement(human, judge) == []
    (few,) = judge_human_agreement(human, judge.assign(criterion="speed"))
    assert few.rho is None and "generations" in few.note
