import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation.statistics import parameter_effects, spearman_interval
from tests.evaluation.statistics._rows import long_rows


def test_spearman_matches_scipy_with_fisher_interval():
    rng = np.random.default_rng(1)
    x = rng.random(25)
    y = x + rng.normal(scale=0.3, size=25)
    rho, ci, p, note = spearman_interval(x, y)
    ref = stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    half = 1.959964 * math.sqrt(1.06 / 22)
    assert ci == pytest.approx(
        (math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half)), abs=1e-6
    )
    assert note == ""


def test_fisher_interval_by_hand():
    # ranks with Σd² = 182 at n = 13: ρ = 1 − 6·182/(13·168) = 0.5
    # se = sqrt(1.06/10) = 0.325576; atanh(0.5) = 0.549306; ±1.959964·se = ±0.638118
    # → (tanh(−0.088812), tanh(1.187424)) = (−0.088579, 0.829778)
    y = [1, 0, 3, 12, 4, 5, 8, 6, 10, 9, 2, 11, 7]
    rho, ci, _, _ = spearman_interval(np.arange(13.0), y)
    assert rho == pytest.approx(0.5)
    assert ci == pytest.approx((-0.088579, 0.829778), abs=1e-5)


def test_few_configs_use_an_exact_permutation_p_value():
    # n = 4, perfectly monotone: 2 of the 4! = 24 pairings reach |ρ| = 1 → p = 2/24
    rho, ci, p, note = spearman_interval([0.0, 0.3, 0.7, 1.0], [0.9, 0.8, 0.6, 0.2])
    assert rho == pytest.approx(-1.0) and p == pytest.approx(2 / 24)
    assert ci is None and "perfect rank correlation" in note


def test_undefined_rank_correlations_say_why():
    assert "need ≥ 3" in spearman_interval([1.0, 2.0], [1.0, 2.0])[3]
    assert "metric is constant" in spearman_interval([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])[3]


def _temperature_sweep(n: int = 200, seed: int = 0):
    """Binary scores: temperature 1.0 is clearly worse, 0.0 and 0.5 are close."""
    rng = np.random.default_rng(seed)
    easy = rng.random(n)
    quality = {"t0": 0.80, "t05": 0.79, "t1": 0.55}
    scores = {c: list((easy < q).astype(float)) for c, q in quality.items()}
    # a little disagreement so the tests are not degenerate
    for c in scores:
        flip = rng.random(n) < 0.05
        scores[c] = [1.0 - v if f else v for v, f in zip(scores[c], flip, strict=True)]
    facts = pd.DataFrame(
        {"config": ["t0", "t05", "t1"], "temperature": [0.0, 0.5, 1.0], "top_p": [0.9, 0.9, 0.9]}
    )
    return long_rows(scores), facts


def test_parameter_effect_best_value_and_recommended_range():
    rows, facts = _temperature_sweep()
    effects = {e.parameter: e for e in parameter_effects(rows, facts, "acc", score_type="binary")}
    temp = effects["temperature"]
    assert temp.n_configs == 3 and temp.rho == pytest.approx(-1.0)
    assert temp.best_value == 0.0 and temp.best_config == "t0"
    assert temp.recommended_values == (0.0, 0.5)
    assert temp.recommended_range == (0.0, 0.5)
    top_p = effects["top_p"]
    assert top_p.rho is None and "only 0.9" in top_p.note


def test_parameter_effects_for_lower_is_better_and_missing_columns():
    rows, facts = _temperature_sweep()
    rows["value"] = 1.0 - rows["value"]  # an error rate
    (temp,) = parameter_effects(
        rows, facts, "acc", score_type="binary", higher_is_better=False, parameters=["temperature"]
    )
    assert temp.best_value == 0.0
    (missing,) = parameter_effects(rows, facts, "acc", score_type="binary", parameters=["num_ctx"])
    assert missing.recommended_range is None and "no column" in missing.note
