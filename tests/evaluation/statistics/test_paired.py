import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from evaluation.statistics import choose_test, compare_pair, compare_scores, rank_biserial
from tests.evaluation.statistics._rows import long_rows


def _correlated(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(size=n)
    return difficulty + shift + rng.normal(scale=0.5, size=n), difficulty + rng.normal(
        scale=0.5, size=n
    )


def test_paired_t_matches_scipy():
    a, b = _correlated(30, 0.3, 1)
    res = compare_scores(a, b)
    ref = stats.ttest_rel(a, b)
    assert res.test == "paired t"
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.diff_ci == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert res.correlation == pytest.approx(stats.pearsonr(a, b).statistic)
    assert res.effect_size * math.sqrt(30) == pytest.approx(ref.statistic)  # t = d_z·√n


def test_d_z_by_hand():
    # d = 1, 2, 3: d̄ = 2, sd = 1 → d_z = 2; t = 2·√3
    res = compare_scores([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert res.effect_size == pytest.approx(2.0)
    assert res.statistic == pytest.approx(2 * math.sqrt(3))


def test_exact_mcnemar_by_hand_and_against_statsmodels():
    a = [1, 1, 1, 1, 0, 0, 1, 0]
    b = [0, 0, 0, 1, 0, 1, 1, 0]
    # discordant: A-only 3 (cases 0,1,2), B-only 1 (case 5) → exact two-sided binomial
    # p = 2·P(X ≤ 1 | n = 4, 1/2) = 2·(1 + 4)/16 = 0.625; statistic = min(3, 1) = 1
    res = compare_scores(a, b, score_type="binary")
    assert res.test == "exact McNemar"
    assert res.p_value == pytest.approx(0.625)
    assert res.statistic == 1
    assert res.p_value == pytest.approx(mcnemar([[2, 3], [1, 2]], exact=True).pvalue)
    assert res.p_value == pytest.approx(stats.binomtest(1, 4, 0.5).pvalue)
    assert res.diff == pytest.approx(0.25)


def test_wilcoxon_matches_scipy_for_each_zero_method():
    a, b = _correlated(25, 0.2, 2)
    a, b = np.round(a), np.round(b)  # ordinal: many zero differences
    for zero_method in ("pratt", "zsplit", "wilcox"):
        res = compare_scores(a, b, score_type="ordinal", zero_method=zero_method)
        ref = stats.wilcoxon(a - b, zero_method=zero_method)
        assert res.test == "Wilcoxon signed-rank"
        assert res.statistic == pytest.approx(ref.statistic)
        assert res.p_value == pytest.approx(ref.pvalue)
        assert res.effect_size_name == "rank-biserial r"


def test_rank_biserial_by_hand():
    # d = 1, 2, −3, 4: ranks 1..4, R+ = 7, R− = 3 → r = 4/10
    assert rank_biserial(np.array([1.0, 2.0, -3.0, 4.0])) == pytest.approx(0.4)
    d = np.array([0.0, 1.0, -2.0, 3.0])
    # pratt ranks the zero (1) and drops it: R+ = 2 + 4 = 6, R− = 3 → 3/9
    assert rank_biserial(d, "pratt") == pytest.approx(1 / 3)
    # zsplit gives half the zero's rank to each side: 6.5 vs 3.5 → 3/10
    assert rank_biserial(d, "zsplit") == pytest.approx(0.3)
    # wilcox drops the zero first: ranks 1, 2, 3 → R+ = 4, R− = 2 → 2/6
    assert rank_biserial(d, "wilcox") == pytest.approx(1 / 3)
    # min(R+, R−) is scipy's two-sided statistic
    assert stats.wilcoxon(d, zero_method="zsplit").statistic == pytest.approx(3.5)


def test_auto_choice_follows_score_type_and_shape():
    ones = np.array([1.0, 0.0, 1.0, 1.0])
    assert choose_test("binary", ones, ones[::-1], clustered=False)[0] == "mcnemar"
    averaged = np.array([0.5, 1.0, 0.0, 1 / 3])
    test, why = choose_test("binary", averaged, ones, clustered=False)
    assert test == "t" and "McNemar needs one 0/1 score" in why
    assert choose_test("ordinal", ones, ones, clustered=False)[0] == "wilcoxon"
    a, b = _correlated(40, 0.0, 3)
    assert choose_test("continuous", a, b, clustered=False) == ("t", "")
    skewed = np.random.default_rng(4).exponential(size=40) ** 2
    test, why = choose_test("continuous", skewed, np.zeros(40), clustered=False)
    assert test == "wilcoxon" and "skewed" in why
    assert choose_test("binary", ones, ones, clustered=True)[0] == "clustered_t"


def test_clustered_comparison_uses_the_clustered_se_on_c_minus_1_df():
    a, b = _correlated(36, 0.25, 5)
    groups = np.repeat(np.arange(9), 4)
    res = compare_scores(a, b, groups=groups)
    d = a - b
    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    se = fit.bse[0] * math.sqrt(9 / 8)
    assert res.test == "clustered paired t" and res.n_clusters == 9
    assert res.statistic == pytest.approx(d.mean() / se)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), 8))


def test_singleton_groups_keep_the_score_type_test():
    a, b = [1.0, 1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]
    res = compare_scores(a, b, groups=["g1", "g2", "g3", "g4", "g5"], score_type="binary")
    assert res.test == "exact McNemar"


def test_permutation_is_exact_for_small_n():
    # five positive differences: only the all-positive and all-negative sign patterns are
    # as extreme, so p = 2/2⁵ = 0.0625
    res = compare_scores([2.0, 3.0, 4.0, 5.0, 6.5], [1.0, 1.0, 1.0, 1.0, 1.0], test="permutation")
    assert res.p_value == pytest.approx(0.0625)


def test_bootstrap_interval_and_p_value():
    a, b = _correlated(60, 0.6, 6)
    res = compare_scores(a, b, test="bootstrap", n_resamples=999)
    ref = stats.bootstrap(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        paired=True,
        n_resamples=999,
        rng=np.random.default_rng(0),
    )
    assert res.diff_ci == pytest.approx(tuple(ref.confidence_interval))
    assert res.p_value == pytest.approx(2 / 1000)  # no resample reaches 0: (0 + 1)·2/(B + 1)


def test_requested_test_that_cannot_apply_is_a_clear_error():
    with pytest.raises(ValueError, match="McNemar needs one 0/1 score"):
        compare_scores([0.5, 0.2], [0.1, 0.3], test="mcnemar")
    with pytest.raises(ValueError, match="unknown paired test"):
        compare_scores([0.5, 0.2], [0.1, 0.3], test="anova")


def test_no_shared_cases_gives_a_message_not_a_crash():
    rows = long_rows({"A": [1.0, 0.0, np.nan], "B": [np.nan, np.nan, 1.0]})
    res = compare_pair(rows, "A", "B", "acc", score_type="binary")
    assert res.n_used == 0 and res.n_excluded == 3
    assert res.p_value is None and res.diff is None
    assert "no case scored by both" in res.note
    assert res.exclusion_reasons == {"unscorable (NaN) for A": 1, "unscorable (NaN) for B": 2}


def test_exclusions_are_counted_by_reason():
    rows = long_rows({"A": [1.0, 0.0, 1.0, np.nan, 1.0], "B": [1.0, 1.0, 0.0]})
    res = compare_pair(rows, "A", "B", "acc", score_type="binary")
    assert res.n_used == 3 and res.n_excluded == 2
    assert res.exclusion_reasons == {"unscorable (NaN) for A": 1, "no row for B": 2}


def test_one_shared_case_is_undefined():
    res = compare_scores([1.0], [0.0])
    assert res.n_used == 1 and res.diff == 1.0
    assert res.p_value is None and res.diff_ci is None and "n = 1" in res.note


def test_identical_configs_are_not_different():
    a = np.array([0.2, 0.9, 0.4, 0.4])
    res = compare_scores(a, a)
    assert res.diff == 0 and res.p_value == 1.0
    assert res.effect_size is None and "identically" in res.note


def test_constant_nonzero_difference_switches_from_t_to_wilcoxon():
    a = np.array([0.2, 0.9, 0.4, 0.5, 0.1, 0.3])
    res = compare_scores(a + 0.1, a)
    assert res.test == "Wilcoxon signed-rank" and "t undefined" in res.note
    assert res.p_value == pytest.approx(stats.wilcoxon(np.full(6, 0.1)).pvalue)


def test_zero_variance_metric_explains_the_undefined_correlation():
    res = compare_scores([1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0], score_type="binary")
    assert res.correlation is None and "correlation undefined: A" in res.note
    assert 0 <= res.p_value <= 1


def test_with_two_groups_a_bounded_difference_keeps_its_interval_on_the_scale():
    """Clustered t on 2 groups uses t with 1 df (12.7): a 0/1 metric's difference
    interval came out as [-2.9, 3.4]. A difference of means on [lo, hi] lies within
    ±(hi − lo); the interval is cut there and the note says why."""
    a = np.array([1, 1, 0, 1, 0, 0, 1, 0], dtype=float)
    b = np.array([0, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    groups = ["g1"] * 4 + ["g2"] * 4
    binary = compare_scores(a, b, groups=groups, score_type="binary")
    assert binary.n_clusters == 2 and binary.diff == pytest.approx(0.25)
    low, high = binary.diff_ci
    assert -1.0 <= low < 0.25 < high <= 1.0
    assert "interval cut to the scale's range of differences [-1, 1]" in binary.note
    assert "2 groups are too few" in binary.note
    stars = compare_scores(1 + 4 * a, 1 + 4 * b * 0.5, groups=groups, bounds=(1.0, 5.0))
    assert stars.diff_ci[0] >= -4.0 and stars.diff_ci[1] <= 4.0
    unbounded = compare_scores(a * 100, b * 100, groups=groups, score_type="continuous")
    assert unbounded.diff_ci[1] > 100  # no scale declared: nothing to cut to


def test_a_difference_of_exactly_0_is_never_significant_whatever_the_groups():
    """Newcomer's finding: differences -1, 0, +1, 0, 0 in groups apollo-11 ×4 and
    marie-curie ×1 have both groups' mean difference 0, so the clustered SE was 0, t = 0/0
    and max(0, NaN) reported p = 0: compare starred a difference of 0. A clustered SE of 0
    for varying differences is replaced by the unclustered one, and t = 0 gives p = 1."""
    groups = ["apollo-11"] * 4 + ["marie-curie"]
    res = compare_scores([1, 1, 0, 0, 0], [0, 1, 1, 0, 0], groups=groups, score_type="binary")
    assert res.test == "clustered paired t" and res.diff == 0
    assert res.statistic == 0 and res.p_value == 1
    assert res.diff_ci == (-1.0, 1.0)  # not [0, 0]: 2 groups cannot bound it
    assert "residuals cancel" in res.note
    assert "invalid value" not in res.note


def test_groups_with_equal_mean_differences_do_not_make_a_difference_certain():
    """Both groups' mean difference +0.5 gave SE_cl = 0, t = inf, p = 0 and the interval
    [0.5, 0.5]; with the unclustered SE as the floor: t = 0.5/0.289 on 1 df."""
    res = compare_scores([1, 0, 1, 0], [0, 0, 0, 0], groups=["a", "a", "m", "m"])
    assert res.diff == 0.5 and res.se_diff == pytest.approx(np.std([1, 0, 1, 0], ddof=1) / 2)
    assert res.statistic == pytest.approx(math.sqrt(3))
    assert res.p_value == pytest.approx(2 * stats.t.sf(math.sqrt(3), 1))


@pytest.mark.parametrize("diff_a", [0.0, 1.0])
def test_a_test_statistic_that_is_not_a_number_never_reads_as_p_0(monkeypatch, diff_a):
    """Whatever test returns NaN or an infinite statistic: p = 1 at a mean difference of
    0, else undefined (None) with a note, never max(0, NaN) = 0."""
    from evaluation.statistics import paired

    def broken(*args, **kwargs):
        return math.nan, math.nan, None, "d_z", None

    monkeypatch.setattr(paired, "run_test", broken)
    a = np.array([1.0, 0.0, 1.0, 0.0]) + diff_a / 4
    res = compare_scores(a, [0.0, 1.0, 0.0, 1.0], score_type="continuous")
    if diff_a == 0:
        assert (res.statistic, res.p_value) == (0.0, 1.0) and "p = 1" in res.note
    else:
        assert res.statistic is None and res.p_value is None
        assert "p undefined" in res.note
