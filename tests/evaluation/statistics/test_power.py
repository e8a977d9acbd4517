import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower

from evaluation.statistics import (
    cases_needed,
    mcnemar_power,
    min_detectable_difference,
    paired_diff_variance,
    power_analysis,
    power_for_test,
    power_from_pilot,
    power_from_variances,
    predicted_power,
    t_power,
)
from evaluation.statistics.power import (
    mcnemar_cases_needed,
    mcnemar_min_detectable,
    planned_power,
    t_min_detectable,
    t_units_needed,
)


def test_worked_example_from_the_reference():
    # accuracy 0.7 → Var = 0.21 each; ρ = 0.5 → Var(d) = 0.21 + 0.21 − 2·0.5·0.21 = 0.21
    var_d = paired_diff_variance(0.21, 0.21, 0.5)
    assert var_d == pytest.approx(0.21)
    # (1.96 + 0.84)²·0.21/0.03² = 7.84·0.21/0.0009 ≈ 1829 with rounded z; exact z → 1831.4
    assert cases_needed(var_d, 0.03) == 1832
    # unpaired (ρ = 0): Var(d) = 0.42, twice as many cases
    assert cases_needed(paired_diff_variance(0.21, 0.21, 0.0), 0.03) == 3663


def test_cases_needed_matches_statsmodels():
    sd = math.sqrt(0.21)
    ref = NormalIndPower().solve_power(effect_size=0.03 / sd, alpha=0.05, power=0.8, ratio=0)
    assert cases_needed(0.21, 0.03) == math.ceil(ref)


def test_predicted_power_matches_statsmodels():
    ref = NormalIndPower().power(effect_size=0.2, nobs1=100, alpha=0.05, ratio=0)
    assert predicted_power(1.0, 100, 0.2) == pytest.approx(ref)


def test_min_detectable_difference_inverts_cases_needed():
    mdd = min_detectable_difference(0.3, 500)
    assert mdd == pytest.approx(2.801585 * math.sqrt(0.3 / 500), rel=1e-6)
    assert predicted_power(0.3, 500, mdd) == pytest.approx(0.8, abs=1e-3)
    assert cases_needed(0.3, mdd) in (500, 501)


def test_multiple_comparisons_use_alpha_over_m():
    one = min_detectable_difference(0.2, 400)
    six = min_detectable_difference(0.2, 400, n_comparisons=6)
    # z_{1 − 0.05/12} = 2.638, + 0.8416 → 3.480 vs 2.802
    assert six / one == pytest.approx(3.4798 / 2.8016, rel=1e-3)


def test_more_samples_per_case_shrink_only_the_within_case_part():
    # ω² = 0.2 + 0.2 − 2·0.5·0.2 = 0.2; within 0.1 each: K = 1 → 0.4, K = 4 → 0.25
    assert paired_diff_variance(0.2, 0.2, 0.5, within_var_a=0.1, within_var_b=0.1) == pytest.approx(
        0.4
    )
    assert paired_diff_variance(
        0.2, 0.2, 0.5, within_var_a=0.1, within_var_b=0.1, samples_per_case=4
    ) == pytest.approx(0.25)


def test_power_from_a_one_sample_pilot():
    rng = np.random.default_rng(1)
    a, b = rng.random(50), rng.random(50)
    res = power_from_pilot(a, b, delta=0.05, n=50)
    assert res.var_diff == pytest.approx(np.var(a - b, ddof=1))
    assert res.cases_needed == cases_needed(res.var_diff, 0.05)
    assert res.min_detectable_difference == pytest.approx(
        min_detectable_difference(res.var_diff, 50)
    )


def test_power_from_a_multi_sample_pilot_by_hand():
    a = [[1, 0], [1, 1], [0, 0]]
    b = [[0, 0], [1, 0], [0, 1]]
    # case means: A .5, 1, 0; B 0, .5, .5 → d = .5, .5, −.5, Var(d) = 1/3
    # within (ddof 1): A .5, 0, 0 → 1/6; B 0, .5, .5 → 1/3; K = 2
    # ω² = 1/3 − (1/6)/2 − (1/3)/2 = 1/12
    same_k = power_from_pilot(a, b, delta=0.1)
    assert same_k.var_diff == pytest.approx(1 / 3)
    assert same_k.samples_per_case == 2
    # planned K = 8: 1/12 + (1/6 + 1/3)/8 = 7/48
    assert power_from_pilot(a, b, delta=0.1, samples_per_case=8).var_diff == pytest.approx(7 / 48)


def test_power_from_variances_without_a_pilot():
    res = power_from_variances(0.21, 0.21, 0.5, delta=0.03)
    assert res.cases_needed == 1832 and res.min_detectable_difference is None


def test_undefined_power_is_explained():
    assert "fewer than 2" in power_from_pilot([1.0], [0.0], delta=0.1).note
    zero = power_analysis(0.0, n=100, delta=0.1)
    assert zero.min_detectable_difference is None and "zero variance" in zero.note
    small = power_analysis(0.2, n=1)
    assert small.min_detectable_difference is None and "n = 1" in small.note


def test_bad_power_arguments_raise():
    with pytest.raises(ValueError):
        paired_diff_variance(0.2, 0.2, 1.5)
    with pytest.raises(ValueError):
        cases_needed(0.2, 0.0)
    with pytest.raises(ValueError):
        min_detectable_difference(0.2, 100, alpha=1.5)


# --- power of the test actually run -----------------------------------------------------


def test_t_power_matches_statsmodels_ttest_power_on_n_minus_1_df():
    from statsmodels.stats.power import TTestPower

    for delta, sd, n in ((0.1, 0.4, 9), (0.05, 0.3, 40), (0.2, 1.0, 300)):
        ref = TTestPower().power(effect_size=delta / sd, nobs=n, alpha=0.05)
        assert t_power(delta, sd, n) == pytest.approx(ref, rel=1e-6)
    ref = TTestPower().power(effect_size=0.5, nobs=12, alpha=0.05 / 6)
    assert t_power(0.5, 1.0, 12, n_comparisons=6) == pytest.approx(ref, rel=1e-6)


def test_t_mde_and_units_needed_invert_statsmodels():
    from statsmodels.stats.power import TTestPower

    effect = TTestPower().solve_power(nobs=9, alpha=0.05, power=0.8)
    assert t_min_detectable(0.3, 9) == pytest.approx(effect * 0.3, rel=1e-6)
    # far above the z answer 2.80·0.3/3 = 0.280 on 8 df
    assert t_min_detectable(0.3, 9) > 1.1 * min_detectable_difference(0.09, 9)
    n = TTestPower().solve_power(effect_size=0.25, alpha=0.05, power=0.8)
    assert t_units_needed(1.0, 0.25) == math.ceil(n)


def test_exact_mcnemar_power_equals_enumeration_of_every_outcome():
    from scipy.stats import multinomial
    from statsmodels.stats.contingency_tables import mcnemar

    n, p10, p01 = 25, 0.25, 0.05
    power = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            p = mcnemar([[0, b], [c, n - b - c]], exact=True).pvalue
            if p <= 0.05:
                power += multinomial.pmf([b, c, n - b - c], n, [p10, p01, 1 - p10 - p01])
    assert mcnemar_power(p10 + p01, p10 - p01, n) == pytest.approx(power, rel=1e-9)


def test_mcnemar_mde_and_cases_needed_reach_the_power_they_promise():
    mde = mcnemar_min_detectable(0.3, 120)
    assert mcnemar_power(0.3, mde, 120) == pytest.approx(0.8, abs=1e-6)
    n = mcnemar_cases_needed(0.3, 0.1)
    assert mcnemar_power(0.3, 0.1, n) >= 0.8 > mcnemar_power(0.3, 0.1, n - 1)
    # at δ = ψ every discordant case favours A; with 3 cases no test reaches 80%
    assert mcnemar_min_detectable(0.3, 3) is None


def test_clustered_power_uses_the_clustered_se_on_c_minus_1_df():
    from statsmodels.stats.power import TTestPower

    # 9 clusters of 4 cases; the clustered SE of d̄ is 0.05 → cluster-mean SD 0.15
    res = power_for_test(
        "clustered paired t", n=36, sd_diff=0.2, se_diff=0.05, n_clusters=9, delta=0.05
    )
    effect = TTestPower().solve_power(nobs=9, alpha=0.05, power=0.8)
    assert res.min_detectable_difference == pytest.approx(effect * 0.15, rel=1e-6)
    clusters = math.ceil(TTestPower().solve_power(effect_size=0.05 / 0.15, alpha=0.05, power=0.8))
    assert res.clusters_needed == clusters and res.cases_needed == clusters * 4
    assert "8 df" in res.note


@pytest.mark.parametrize(
    ("test", "spread", "stored"),
    [
        # a stored comparison of 40 cases with these statistics plans like a pilot spread
        ("exact McNemar", 0.3, dict(sd_diff=0.5, n_discordant=12)),
        ("paired t", 0.2, dict(sd_diff=math.sqrt(0.2))),
        ("clustered paired t", 0.1, dict(sd_diff=0.4, se_diff=math.sqrt(0.1 / 8), n_clusters=8)),
    ],
)
def test_planned_power_agrees_with_the_power_stored_beside_a_comparison(test, spread, stored):
    kw = dict(delta=0.15, alpha=0.05, power=0.8, n_comparisons=3)
    plan = planned_power(test, spread, n=40, n_clusters=stored.get("n_clusters"), **kw)
    same = power_for_test(test, n=40, **stored, **kw)
    assert plan.test == same.test == test
    assert plan.min_detectable_difference == pytest.approx(same.min_detectable_difference)
    assert plan.cases_needed == same.cases_needed
    assert plan.clusters_needed == same.clusters_needed
    if test == "clustered paired t":
        assert plan.cases_needed == plan.clusters_needed * 5  # 40 cases in 8 groups
        assert plan.cases_needed > planned_power("paired t", spread * 5, n=40, **kw).cases_needed


def test_planned_power_says_when_mcnemar_cannot_get_there():
    plan = planned_power("exact McNemar", 0.1, n=10, delta=0.2)
    assert plan.min_detectable_difference is None and plan.cases_needed is None
    assert "10 cases cannot reach 80% power with McNemar" in plan.note
    assert "exceeds the discordant share" in plan.note
    assert planned_power("paired t", None, n=10, delta=0.2).cases_needed is None
    with pytest.raises(ValueError, match="at least 2 clusters"):
        planned_power("clustered paired t", 0.1, n=10, delta=0.2)
