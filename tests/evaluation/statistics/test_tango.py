"""Paired differences of 0/1 scores: Tango's score interval (finding F5 of the newcomer's
report: 8 cases that A alone got right read "+1.00 [+1.00, +1.00]", 2 such cases
"+1.000 [+1.000, +1.000]" beside p_adj 1.000), and no interval where differences on
another scale are all equal."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri

from evaluation.statistics import _plain, compare_scores
from evaluation.statistics.tango import tango_interval

Z = float(ndtri(0.975))


# Published values: the contingencytables R package (M. W. Fagerland, S. Lydersen,
# P. Laake, "Statistical Analysis of Contingency Tables", 2017, chapter 8; their
# "Recommended tests and confidence intervals for paired binomial proportions",
# Statistics in Medicine 33:2850–2875, 2014), tests/testthat/test-ch8.R in
# github.com/ocbe-uio/contingencytables, printing Tango_asymptotic_score_CI_paired_2x2:
#   cavo_2012 [[59, 6], [16, 80]]  "estimate = -0.0621 (95% CI -0.1240 to -0.0054)"
#   matrix(c(0, 0, 3, 0), 2)      "1.0000 (95% CI -0.1230 to 1.0000)"
#   matrix(c(0, 3, 0, 0), 2)      "-1.0000 (95% CI -1.0000 to 0.1230)"
@pytest.mark.parametrize(
    ("b", "c", "n", "low", "high"),
    [
        (6, 16, 161, -0.1240, -0.0054),  # complete response, Cavo et al. 2012
        (3, 0, 3, -0.1230, 1.0),
        (0, 3, 3, -1.0, 0.1230),
    ],
)
def test_agrees_with_the_published_intervals(b, c, n, low, high):
    assert tango_interval(b, c, n) == pytest.approx((low, high), abs=5e-5)


def test_closed_forms_on_the_boundary():
    """T(Δ) solved by hand: with b = c = 0 the limits are ±z²/(n + z²); with b = n the
    lower one is (n − z²)/(n + z²) and the upper 1."""
    for n in (1, 2, 8, 50):
        edge = Z**2 / (n + Z**2)
        assert tango_interval(0, 0, n) == pytest.approx((-edge, edge), abs=1e-9)
        assert tango_interval(n, 0, n) == pytest.approx(((n - Z**2) / (n + Z**2), 1.0), abs=1e-9)


def test_the_newcomers_eight_cases_get_an_interval_not_a_point():
    """A right on all 8, B wrong on all 8: was +1.00 [+1.00, +1.00] (t on d, sd 0)."""
    res = compare_scores([1.0] * 8, [0.0] * 8, score_type="binary")
    assert res.diff == 1.0
    assert res.diff_ci == pytest.approx((0.3512, 1.0), abs=1e-4)
    assert res.p_value == _plain.mcnemar_exact(8, 0)[1] == pytest.approx(2 / 2**8)
    assert "degenerate" not in res.note


def test_two_cases_get_a_wide_interval_that_holds_0_as_the_test_does():
    res = compare_scores([1.0, 1.0], [0.0, 0.0], score_type="binary")
    low, high = res.diff_ci
    assert low < 0 < high == 1.0 and high - low > 1.3
    assert res.p_value == 0.5  # exact McNemar, unchanged


def test_no_discordant_case_gives_a_symmetric_interval_about_0():
    a = [1.0, 0.0, 1.0, 1.0, 0.0]
    res = compare_scores(a, list(a), score_type="binary")
    assert res.diff == 0 and res.p_value == 1.0
    edge = Z**2 / (5 + Z**2)
    assert res.diff_ci == pytest.approx((-edge, edge))


def test_one_case_has_no_interval_in_a_comparison():
    res = compare_scores([1.0], [0.0], score_type="binary")
    assert res.diff_ci is None and "n = 1" in res.note
    assert tango_interval(1, 0, 1) == pytest.approx((1 - 2 * Z**2 / (1 + Z**2), 1.0))


def test_p_values_are_the_exact_mcnemar_ones():
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = rng.integers(0, 2, (2, 30)).astype(float)
        res = compare_scores(a, b, score_type="binary")
        b10, b01 = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
        assert res.test == "exact McNemar"
        if b10 + b01:
            assert res.p_value == _plain.mcnemar_exact(b10, b01)[1]


def test_grouped_cases_that_all_differ_alike_get_tangos_interval_with_a_note():
    res = compare_scores([1.0] * 6, [0.0] * 6, groups=[1, 1, 2, 2, 3, 3], score_type="binary")
    assert res.diff_ci == pytest.approx(tango_interval(6, 0, 6))
    assert "treats cases as independent" in res.note


def test_binary_cases_in_groups_keep_the_clustered_interval_otherwise():
    a = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    b = [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    res = compare_scores(a, b, groups=[1, 1, 2, 2, 3, 3], score_type="binary")
    assert res.test == "clustered paired t"
    assert res.diff_ci != pytest.approx(tango_interval(3, 1, 6))


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.5, 2.5, 3.5], [1.0, 2.0, 3.0]), ([0.25, 0.5, 0.75], [0.25, 0.5, 0.75])],
)
def test_equal_differences_on_other_scales_get_no_interval(a, b):
    """Not a zero-width interval: the note says every difference is equal."""
    res = compare_scores(a, b, score_type="continuous")
    assert res.diff_ci is None and res.sd_diff == 0
    assert f"all 3 differences equal {res.diff:+.4g}: no interval" in res.note
    assert res.p_value is not None  # the test is unchanged


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 60)
    .flatmap(lambda n: st.tuples(st.integers(0, n), st.integers(0, n), st.just(n)))
    .filter(lambda t: t[0] + t[1] <= t[2]),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_the_interval_holds_the_estimate_within_minus_1_and_1(counts, confidence):
    b, c, n = counts
    low, high = tango_interval(b, c, n, confidence)
    estimate = (b - c) / n
    assert -1.0 <= low <= estimate <= high <= 1.0
    assert low < high  # never a point
    # 0 is left out exactly where McNemar's asymptotic statistic (T at Δ = 0) rejects
    z = float(ndtri(0.5 + confidence / 2))
    statistic = (b - c) / math.sqrt(b + c) if b + c else 0.0
    if abs(abs(statistic) - z) > 1e-6:
        assert (low < 0 < high) == (abs(statistic) < z)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="b \\+ c ≤ n"):
        tango_interval(3, 2, 4)


def test_an_interval_leaving_out_0_beside_an_exact_p_that_does_not_says_why():
    """4 cases only A got right: Tango's [+0.02, +1] (McNemar's asymptotic z = 2 > 1.96),
    exact McNemar p = 0.125; the note says which to read rather than leave it a riddle."""
    res = compare_scores([1.0] * 4 + [0.0] * 4, [0.0] * 8, score_type="binary")
    assert res.diff_ci[0] > 0 and res.p_value == 0.125
    assert "leaves out 0 though p = 0.12 does not" in res.note
    assert "4 discordant cases" in res.note
    plain = compare_scores([1.0] * 8, [0.0] * 8, score_type="binary")
    assert "leaves out 0" not in plain.note  # p = 0.0078 rejects too
