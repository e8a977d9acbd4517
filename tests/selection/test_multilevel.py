"""The multilevel model of a task type's measured means, on data with a known answer."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from selection.multilevel import fit


def _grid(**levels: tuple) -> pd.DataFrame:
    rows = list(itertools.product(*levels.values()))
    frame = pd.DataFrame(rows, columns=list(levels))
    frame.index = [f"c{i}" for i in range(len(frame))]
    return frame


def _truth(factors: pd.DataFrame, interaction: float = 0.0) -> pd.Series:
    base = factors["model"].map({"m1": 0.4, "m2": 0.55, "m3": 0.7, "m4": 0.8})
    hot = (factors["temperature"] == 1.0).astype(float)
    cost = 0.15 + interaction * (factors["model"] == "m1")
    return base - cost * hot + 0.03 * (factors["template"] == "cot")


def test_a_setting_measured_on_other_models_predicts_an_unmeasured_config():
    # Temperature costs 0.15 for every model; m4 was never measured hot. Its hot configs
    # are predicted from the other models' temperature effect, less certainly than a
    # measured config is estimated.
    factors = _grid(
        model=("m1", "m2", "m3", "m4"), template=("plain", "cot"), temperature=(0.0, 1.0)
    )
    truth = _truth(factors)
    measured = factors.index[~((factors["model"] == "m4") & (factors["temperature"] == 1.0))]
    rng = np.random.default_rng(0)
    v = pd.Series(1e-4, index=measured)
    y = truth[measured] + rng.normal(0, 0.01, len(measured))
    result = fit(y, v, factors)
    unmeasured = factors.index.difference(measured)
    assert result.mean[unmeasured].to_numpy() == pytest.approx(truth[unmeasured], abs=0.03)
    assert result.sd[unmeasured].min() > result.sd[measured].max()


def test_an_interaction_the_data_show_is_kept_and_one_they_do_not_show_shrinks():
    factors = _grid(
        model=("m1", "m2", "m3", "m4"),
        template=("plain", "cot"),
        temperature=(0.0, 1.0),
        top_p=(0.5, 0.9),
    )
    rng = np.random.default_rng(1)
    v = pd.Series(4e-4, index=factors.index)
    for interaction, kept in ((0.3, True), (0.0, False)):
        truth = _truth(factors, interaction)
        y = truth + rng.normal(0, 0.02, len(truth))
        result = fit(y, v, factors)
        assert (result.variances["model*temperature"] > 1e-2) is kept
        # Either way the estimates are closer to the truth than the measurements.
        assert (result.mean - truth).abs().mean() < (y - truth).abs().mean()


def test_cases_shared_by_a_suite_are_not_credited_to_the_configs_run_on_it():
    # Every config run on suite b measures 0.2 higher (its cases are easy); m4 was run on
    # b only, the others on a for top_p 0.5 and on b for 0.9. With the suite shares the
    # suite's ease is estimated from everyone run on it; without, m4 takes it as its own.
    factors = _grid(
        model=("m1", "m2", "m3", "m4"), template=("plain", "cot"), top_p=(0.5, 0.9)
    ).assign(temperature=0.0)
    truth = _truth(factors)
    on_b = (factors["top_p"] == 0.9) | (factors["model"] == "m4")
    y = truth + 0.2 * on_b
    v = pd.Series(1e-4, index=factors.index)
    shares = pd.DataFrame({"a": (~on_b).astype(float), "b": on_b.astype(float)})
    paired = fit(y, v, factors, shares)
    m4 = factors.index[factors["model"] == "m4"]
    others = factors.index.difference(m4)
    # Estimates are at the average suite mix: the truth plus the average ease.
    level = 0.2 * on_b.mean()
    assert paired.mean.to_numpy() == pytest.approx(truth + level, abs=0.01)
    unpaired = fit(y, v, factors)
    gap = unpaired.mean[m4].mean() - unpaired.mean[others].mean()
    assert gap - (truth[m4].mean() - truth[others].mean()) > 0.05


def test_configs_that_share_effects_have_correlated_estimates():
    # Two configs differing only in top_p share their model's, template's and
    # temperature's effects: their estimates' covariance is a large part of each
    # variance, and more than for two configs that share nothing but the intercept.
    factors = _grid(
        model=("m1", "m2", "m3", "m4"),
        template=("plain", "cot"),
        temperature=(0.0, 1.0),
        top_p=(0.5, 0.9),
    )
    truth = _truth(factors)
    rng = np.random.default_rng(2)
    measured = factors.index[::2]
    y = truth[measured] + rng.normal(0, 0.05, len(measured))
    result = fit(y, pd.Series(0.0025, index=measured), factors)
    twins = factors.index[(factors["model"] == "m1") & (factors["template"] == "plain")]
    twins = twins[factors.loc[twins, "temperature"] == 0.0]
    a, b = twins[0], twins[1]
    far = factors.index[
        (factors["model"] == "m4") & (factors["template"] == "cot") & (factors["temperature"] == 1)
    ][0]
    shared = result.covariance(a, b)
    assert shared > 0.5 * min(result.sd[a], result.sd[b]) ** 2
    assert shared > result.covariance(a, far)
    assert result.covariance(a, a) == 0.0


def test_a_level_no_measured_config_has_is_not_estimated_as_the_measured_one():
    """A newcomer's classification configs all used the "labelled" template; a QA config
    (another template) was read as if it had that template, with the measured configs'
    small error: 2.1% [1.3–3.0%] for a config never run on classification."""
    factors = _grid(model=("m1", "m2"), template=("plain", "cot"), temperature=(0.0, 1.0))
    measured = factors.index[factors["template"] == "plain"]
    y = _truth(factors)[measured]
    result = fit(y, pd.Series(1e-4, index=measured), factors)
    other = factors.index[factors["template"] == "cot"]
    assert result.mean[other].isna().all() and result.sd[other].isna().all()
    assert result.mean[measured].notna().all()


def test_the_data_are_ample_with_twice_as_many_measured_configs_as_fixed_effects():
    # Intercept, 3 model, 1 template and 1 temperature effects: 6 fixed, ample from 12.
    factors = _grid(
        model=("m1", "m2", "m3", "m4"), template=("plain", "cot"), temperature=(0.0, 1.0)
    )
    truth = _truth(factors)
    ten = [0, 1, 2, 5, 6, 7, 9, 10, 12, 15]  # every level of every factor measured
    for at, ample in ((ten, False), ([*ten, 3, 13], True)):
        measured, n = factors.index[at], len(at)
        result = fit(truth[measured], pd.Series(1e-4, index=measured), factors)
        assert (result.measured, result.fixed, result.ample) == (n, 6, ample)


def test_a_value_between_two_measured_ones_is_read_between_their_effects():
    """Newcomers' C2: a never-run config at temperature 0.3, between the measured 0 and
    0.7, was left unread (its value's own effect had only its flat prior), so the trees
    alone predicted a cot config as the concise one where every measured cot config
    scored 0. A value outside the measured ones stays unread."""
    factors = _grid(model=("m1", "m2"), template=("plain", "cot"), temperature=(0.0, 1.0))
    measured = factors.index
    y = _truth(factors)[measured]
    unseen = pd.DataFrame(
        {"model": ["m2", "m2", "m2"], "template": ["plain", "cot", "cot"]}, index=["a", "b", "c"]
    ).assign(temperature=[0.5, 0.5, 2.0])
    every = pd.concat([factors, unseen])
    result = fit(y, pd.Series(1e-4, index=measured), every, ordered=["temperature"])
    # m2 is 0.55, temperature 1.0 costs 0.15 (halfway: 0.075), cot adds 0.03.
    assert result.mean["a"] == pytest.approx(0.55 - 0.075, abs=0.01)
    assert result.mean["b"] - result.mean["a"] == pytest.approx(0.03, abs=0.01)
    # What a straight line may miss, half the two values' difference, is in its sd.
    assert 0.075 <= result.sd["a"] < 0.1
    assert result.sd["c"] > 1  # outside the measured values: the flat prior alone
    unordered = fit(y, pd.Series(1e-4, index=measured), every)
    assert unordered.sd["a"] > 1


def test_rows_only_read_do_not_change_the_others_estimates():
    factors = _grid(
        model=("m1", "m2", "m3", "m4"), template=("plain", "cot"), temperature=(0.0, 1.0)
    )
    measured = factors.index[:12]
    y = _truth(factors)[measured]
    v = pd.Series(1e-4, index=measured)
    unseen = pd.DataFrame({"model": ["m5"], "template": ["terse"], "temperature": [0.5]})
    unseen.index = ["new"]
    alone = fit(y, v, factors, ordered=["temperature"])
    read = fit(y, v, pd.concat([factors, unseen]), ordered=["temperature"], read_only=["new"])
    pd.testing.assert_series_equal(read.mean[factors.index], alone.mean, atol=1e-9)
    assert "new" in read.mean.index
