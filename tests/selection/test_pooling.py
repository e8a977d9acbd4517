"""Partial pooling of measured means over settings, checked against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from selection.pooling import pool, settings_variance


def test_configs_that_agree_beyond_noise_pool_into_the_group_mean():
    # Two settings of one (model, template), each 0.01 variance, means 0.6 and 0.7:
    # Q = 100·(0.05² + 0.05²) = 0.5 < df = 1, so τ² = 0 and both get the
    # inverse-variance mean 0.65 with variance 1/(100 + 100) = 0.005.
    y, v = np.array([0.6, 0.7]), np.array([0.01, 0.01])
    mean, se, tau2 = pool(y, v, ["a", "a"])
    assert tau2 == 0.0
    assert mean == pytest.approx([0.65, 0.65])
    assert se == pytest.approx(np.sqrt([0.005, 0.005]))


def test_a_real_settings_effect_is_not_pulled_to_the_group():
    # Means 0.2 and 0.8, variance 0.001 each: Q = 1000·(0.3² + 0.3²) = 180, df = 1,
    # C = 2000 − 2·10⁶/2000 = 1000, τ² = 179/1000 = 0.179; w = 0.179/0.18 ≈ 0.9944,
    # so each keeps its own measurement up to (1 − w)·0.3 ≈ 0.0017.
    y, v = np.array([0.2, 0.8]), np.array([0.001, 0.001])
    mean, se, tau2 = pool(y, v, ["a", "a"])
    assert tau2 == pytest.approx(0.179)
    w = 0.179 / 0.180
    assert mean == pytest.approx([0.5 - 0.3 * w, 0.5 + 0.3 * w])
    centre_var = 1 / (2 / 0.180)
    assert se[0] == pytest.approx(np.sqrt(w * 0.001 + (1 - w) ** 2 * centre_var))


def test_groups_do_not_pool_with_each_other_and_a_single_config_keeps_its_measurement():
    # Group a: two configs that agree (τ² from a alone is 0: Q = 0); group b: one config.
    y, v = np.array([0.5, 0.5, 0.9]), np.array([0.01, 0.04, 0.02])
    mean, se, tau2 = pool(y, v, ["a", "a", "b"])
    assert tau2 == 0.0
    assert mean == pytest.approx([0.5, 0.5, 0.9])
    assert se[:2] == pytest.approx(np.sqrt([1 / (100 + 25)] * 2))
    assert se[2] == pytest.approx(np.sqrt(0.02))


def test_unequal_precision_weights_the_better_measured_config_more():
    # Fixed-effect mean (0.5/0.01 + 0.6/0.04)/(100 + 25) = 65/125 = 0.52; Q =
    # 0.02²/0.01 + 0.08²/0.04 = 0.04 + 0.16 = 0.2 < df = 1, so τ² = 0 and both get 0.52.
    y, v = np.array([0.5, 0.6]), np.array([0.01, 0.04])
    mean, _, tau2 = pool(y, v, ["a", "a"])
    assert tau2 == 0.0
    assert mean == pytest.approx([0.52, 0.52])


def test_settings_variance_is_pooled_over_groups():
    # Group a spreads (Q = 180 as above), group b agrees exactly (Q = 0): one τ² for
    # both, (180 − 2)/(1000 + 1000) = 0.089.
    y = np.array([0.2, 0.8, 0.5, 0.5])
    v = np.full(4, 0.001)
    assert settings_variance(y, v, ["a", "a", "b", "b"]) == pytest.approx(0.089)
