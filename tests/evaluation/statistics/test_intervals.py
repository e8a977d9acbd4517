import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from evaluation.statistics import case_table, corpus_interval, mean_interval, summarize
from tests.evaluation.statistics._rows import long_rows


def test_clt_interval_by_hand():
    # s = 0.9, 0.4, 0.6, 0.7, 0.4: mean 0.6; Σ(s − 0.6)² = .09+.04+0+.01+.04 = 0.18;
    # /(n−1) = 0.045; /n = 0.009; SE = 0.0948683; t_{0.975, 4} = 2.776445
    est = mean_interval([0.9, 0.4, 0.6, 0.7, 0.4])
    assert est.mean == pytest.approx(0.6)
    assert est.se == pytest.approx(0.0948683, abs=1e-6)
    assert est.ci == pytest.approx((0.6 - 2.776445 * 0.0948683, 0.6 + 2.776445 * 0.0948683))
    assert est.method == "CLT"
    # the same SE for 0/1 scores (s = 1,0,1,1,0: SE = sqrt(0.06)), with a Wilson interval
    assert mean_interval([1, 0, 1, 1, 0]).se == pytest.approx(0.244949, abs=1e-6)


def test_clt_interval_matches_scipy():
    x = np.random.default_rng(1).normal(0.5, 0.2, size=37)
    est = mean_interval(x, confidence=0.9)
    assert est.se == pytest.approx(stats.sem(x))
    assert est.ci == pytest.approx(stats.t.interval(0.9, df=36, loc=x.mean(), scale=stats.sem(x)))


def test_clustered_se_by_hand():
    # s = 1,0 | 1,1 in groups a | b; s̄ = 0.75; cluster sums of residuals: a −0.5, b +0.5
    # SE_cl = (1/4)·sqrt(0.25 + 0.25) · sqrt(2/1) = 0.25; df = C − 1 = 1
    est = mean_interval([1, 0, 1, 1], ["a", "a", "b", "b"], proportion=False)
    assert est.se == pytest.approx(0.25)
    assert est.n_clusters == 2
    assert est.ci == pytest.approx((0.75 - 12.706205 * 0.25, 0.75 + 12.706205 * 0.25), abs=1e-5)


def test_clustered_se_matches_statsmodels_with_c_over_c_minus_1():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(12), rng.integers(1, 6, size=12))
    x = rng.normal(size=groups.size) + rng.normal(size=12)[groups]
    fit = sm.OLS(x, np.ones_like(x)).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    est = mean_interval(x, groups)
    assert est.se == pytest.approx(fit.bse[0] * math.sqrt(12 / 11))


def test_singleton_clusters_give_the_unclustered_se():
    x = np.random.default_rng(3).random(15)
    est = mean_interval(x, [f"g{i}" for i in range(15)])
    assert est.se == pytest.approx(stats.sem(x)) and est.method == "CLT"


def test_one_cluster_says_undefined_and_falls_back():
    est = mean_interval([1.0, 0.0, 1.0], ["g", "g", "g"])
    assert "undefined" in est.note
    assert est.se == pytest.approx(stats.sem([1.0, 0.0, 1.0]))


def test_small_n_and_nan_are_explained_not_zero_or_nan():
    one = mean_interval([0.7])
    assert one.mean == 0.7 and one.se is None and one.ci is None
    assert "undefined" in one.note
    none = mean_interval([np.nan, np.nan])
    assert none.mean is None and "no scored cases" in none.note
    partial = mean_interval([1.0, np.nan, 0.0])
    assert partial.n == 2 and "1 NaN" in partial.note


def test_zero_variance_is_flagged():
    est = mean_interval([0.5, 0.5, 0.5, 0.5])
    assert est.se == 0.0 and est.ci == (0.5, 0.5)
    assert "zero variance" in est.note


def test_samples_are_averaged_within_case_first():
    # c0: samples 1, 0 → 0.5; c1: 1, 1 → 1.0; c2: 0 → 0.0. n = 3 cases, not 5 samples.
    # within-case variances (ddof 1): c0 0.5, c1 0.0 (c2 has one sample) → mean 0.25
    rows = long_rows({"A": [[1.0, 0.0], [1.0, 1.0], [0.0]]})
    (est,) = summarize(rows)
    assert est.n == 3 and est.mean == pytest.approx(0.5)
    assert est.se == pytest.approx(stats.sem([0.5, 1.0, 0.0]))
    assert est.samples_per_case == pytest.approx(5 / 3)
    assert est.within_var == pytest.approx(0.25)


def test_summary_counts_exclusions_by_reason():
    rows = long_rows({"A": [1.0, 0.0, 1.0, 1.0], "B": [1.0, np.nan, 0.0]})
    est_b = next(e for e in summarize(rows) if e.config == "B")
    assert est_b.n == 2 and est_b.n_excluded == 2
    assert "1 unscorable (NaN)" in est_b.note and "1 not run" in est_b.note


def test_groups_cluster_the_summary():
    rows = long_rows({"A": [1.0, 0.0, 1.0, 1.0]}, groups=["a", "a", "b", None])
    table = case_table(rows, "acc")
    assert table.groups is not None and table.groups.nunique() == 3  # ungrouped: own cluster
    (est,) = summarize(rows)
    assert "clustered (3 groups)" in est.method


def test_unknown_metric_and_missing_columns_are_clear_errors():
    rows = long_rows({"A": [1.0, 0.0]})
    with pytest.raises(ValueError, match="no score rows for metric 'bleu'"):
        case_table(rows, "bleu")
    with pytest.raises(ValueError, match="lack column"):
        case_table(rows.drop(columns="group"), "acc")


def test_corpus_interval_matches_scipy_bootstrap():
    y = np.random.default_rng(4).random(40)
    est = corpus_interval(lambda idx: float(y[idx].mean()), 40, n_resamples=500, seed=7)
    ref = stats.bootstrap(
        (y,), np.mean, n_resamples=500, method="BCa", rng=np.random.default_rng(7)
    )
    assert est.mean == pytest.approx(y.mean())
    assert est.ci == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)
    assert est.se == pytest.approx(ref.standard_error)
    assert est.method.startswith("bootstrap (BCa")


def test_corpus_interval_falls_back_to_percentile_on_degenerate_data():
    est = corpus_interval(lambda idx: 0.5, 20, n_resamples=200)
    assert est.method.startswith("bootstrap (percentile")
    assert est.ci == (0.5, 0.5) and "degenerate" in est.note


def test_corpus_interval_resamples_whole_groups_and_handles_tiny_n():
    y = np.arange(12, dtype=float)
    est = corpus_interval(
        lambda idx: float(y[idx].mean()), 12, groups=np.repeat([0, 1, 2, 3], 3), n_resamples=300
    )
    assert est.n_clusters == 4 and est.ci[0] <= est.mean <= est.ci[1]
    tiny = corpus_interval(lambda idx: 1.0, 1)
    assert tiny.se is None and "undefined" in tiny.note


def test_a_proportion_interval_stays_inside_0_1_and_is_wilson():
    from statsmodels.stats.proportion import proportion_confint

    est = mean_interval([1.0, 0.0, 0.0])  # the t interval was [−1.10, 1.77]
    assert est.ci == pytest.approx(proportion_confint(1, 3, alpha=0.05, method="wilson"))
    assert 0 <= est.ci[0] < est.mean < est.ci[1] <= 1 and est.method == "Wilson"
    all_right = mean_interval([1.0] * 5)
    assert all_right.ci[1] == 1.0 and all_right.ci[0] == pytest.approx(
        proportion_confint(5, 5, method="wilson")[0]
    )


@pytest.mark.parametrize("n", [9, 10, 13, 18, 25, 29])
@pytest.mark.parametrize("value", [0.0, 1.0])
def test_an_all_equal_proportion_sits_on_its_interval_bound(n, value):
    # rounding once put the bound 1e-16 inside (n = 10: high 0.9999999999999999), so the
    # report's error bars got a negative length and matplotlib refused to draw them
    for groups in (None, [str(i // 4) for i in range(n)]):
        est = mean_interval([value] * n, groups)
        assert est.ci[0] <= est.mean <= est.ci[1]
        assert est.ci[int(value)] == value


def test_a_clustered_proportion_interval_stays_inside_0_1():
    x = [1, 0, 0, 1, 0, 0, 0, 0, 0]
    groups = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    est = mean_interval(x, groups)
    assert 0 <= est.ci[0] < est.mean < est.ci[1] <= 1
    assert est.method.startswith("Wilson, clustered (3 groups), effective n")
    # at the effective n with t_{C−1}: wider than the unclustered Wilson interval
    assert est.ci[1] - est.ci[0] > np.subtract(*mean_interval(x).ci[::-1])


def test_clustering_never_narrows_a_wilson_interval_effective_n_at_most_n():
    # issue 27 §6: 7/36 in 9 groups of 4, the hits spread one per group (a design effect
    # below 1) gave [0.124, 0.292] at "effective n 116"; plain Wilson is [0.098, 0.350]
    x = [1, 0, 0, 0] * 7 + [0, 0, 0, 0] * 2
    groups = [str(i // 4) for i in range(36)]
    est = mean_interval(x, groups)
    plain = mean_interval(x)
    assert plain.ci == pytest.approx((0.098, 0.350), abs=5e-4)
    assert est.method == "Wilson, clustered (9 groups), effective n 36.0"
    assert est.ci[0] <= plain.ci[0] and est.ci[1] >= plain.ci[1]


def test_a_case_without_a_group_is_its_own_cluster():
    x = np.array([0.9, 0.1, 0.5, 0.7, 0.2, 0.4])
    with_none = mean_interval(x, ["a", "a", "b", "b", None, None])
    own = mean_interval(x, ["a", "a", "b", "b", "x1", "x2"])
    assert with_none.se == pytest.approx(own.se) and with_none.n_clusters == 4
    assert with_none.ci == pytest.approx(own.ci)


def test_the_same_cases_in_another_order_give_the_same_bootstrap_interval():
    rng = np.random.default_rng(4)
    hits, totals = rng.integers(0, 10, 30).astype(float), rng.integers(10, 20, 30).astype(float)
    case_ids = np.array([f"c{i:02d}" for i in range(30)])

    def interval(order: np.ndarray):
        h, t = hits[order], totals[order]  # a ratio of sums, like corpus BLEU's counts
        return corpus_interval(
            lambda idx: h[idx].sum() / t[idx].sum(), 30, groups=case_ids[order], n_resamples=200
        ).ci

    assert interval(np.arange(30)) == interval(rng.permutation(30)) == interval(np.arange(30)[::-1])


@pytest.mark.parametrize(
    ("values", "bounds"),
    [
        ([1.0, 1.0, 0.8, 1.0, 0.6, 1.0, 0.95, 0.9], (0.0, 1.0)),  # a recall near 1
        ([0.0, 0.01, 0.25, 0.02, 0.0, 0.05, 0.03], (0.0, 1.0)),  # a ROUGE near 0
        ([1 / 3, 1.0, 2 / 3, 1.0], (0.0, 1.0)),  # pass@1 over 3 samples, 4 problems
        ([5.0, 5.0, 4.0], (1.0, 5.0)),  # stars: t gives 4.67 [3.23, 6.10] (issue 28 §7)
        ([48.0, 92.0, 71.5, 99.0, 88.0], (0.0, 100.0)),  # chrF
    ],
)
def test_a_bounded_score_interval_stays_strictly_on_its_scale(values, bounds):
    plain = mean_interval(values)
    est = mean_interval(values, bounds=bounds)
    lo, hi = bounds
    assert not (lo <= plain.ci[0] and plain.ci[1] <= hi)  # the t interval leaves the scale
    assert lo < est.ci[0] < est.mean < est.ci[1] < hi
    assert est.method == "logit CLT" and est.se == pytest.approx(plain.se)
    # the t interval of logit((x̄ − lo)/(hi − lo)), delta-method SE, mapped back
    width = hi - lo
    u, se_u = (est.mean - lo) / width, plain.se / width
    half = stats.t.ppf(0.975, len(values) - 1) * se_u / (u * (1 - u))
    logit = np.log(u / (1 - u))
    expected = [lo + width / (1 + np.exp(-(logit + s * half))) for s in (-1, 1)]
    assert est.ci == pytest.approx(expected)


def test_the_stars_example_of_the_issue():
    est = mean_interval([5.0, 5.0, 4.0], bounds=(1.0, 5.0))
    assert mean_interval([5.0, 5.0, 4.0]).ci == pytest.approx((3.232, 6.101), abs=1e-3)
    assert est.ci[1] < 5.0 and est.ci[0] > 1.0


def test_a_clustered_bounded_interval_uses_the_clustered_se_on_the_logit_scale():
    x = [0.9, 1.0, 0.7, 1.0, 0.95, 0.6, 1.0, 0.85, 0.9]
    groups = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    plain = mean_interval(x, groups)
    est = mean_interval(x, groups, bounds=(0.0, 1.0))
    assert est.method == "logit clustered (3 groups)" and est.se == pytest.approx(plain.se)
    assert 0 < est.ci[0] < est.mean < est.ci[1] < 1


def test_values_outside_the_declared_bounds_keep_the_t_interval_and_say_so():
    est = mean_interval([0.2, 0.5, 1.4], bounds=(0.0, 1.0))
    assert est.ci == pytest.approx(mean_interval([0.2, 0.5, 1.4]).ci)
    assert "outside the declared bounds [0, 1]" in est.note


def test_metrics_declare_their_scale_and_summaries_keep_to_it():
    from evaluation.metrics import get_metric

    assert get_metric("key_point_recall").bounds == (0.0, 1.0)
    assert get_metric("rougeL").bounds == (0.0, 1.0)
    assert get_metric("pass@1").bounds == (0.0, 1.0) and get_metric("pass@3").bounds == (0, 1)
    assert get_metric("chrf").bounds == (0.0, 100.0)
    assert get_metric("echoes_prompt").bounds is None  # 0/1: Wilson
    rows = pd.DataFrame(
        {
            "config": "c",
            "case_id": [f"k{i}" for i in range(6)],
            "sample_index": 0,
            "metric": "key_point_recall",
            "value": [1.0, 1.0, 0.6, 1.0, 0.8, 1.0],
            "group": None,
        }
    )
    (est,) = summarize(rows, bounds={"key_point_recall": get_metric("key_point_recall").bounds})
    assert est.ci[1] < 1.0 and est.method == "logit CLT"


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 0.0, 12.0, 1.0, 0.0, 3.0, 0.0],  # output_length of a model that mostly says nothing
        [0.2, 0.3, 0.25, 4.8, 0.3],  # latency_s with one slow request
        [3.0, 0.0, 1.0, 0.0, 0.0, 8.0, 0.0, 0.0],  # counts with many zeros
    ],
)
def test_a_non_negative_mean_interval_stays_above_zero(values):
    plain = mean_interval(values)
    est = mean_interval(values, bounds=(0.0, math.inf))
    assert plain.ci[0] < 0  # the t interval goes below 0 (issue 27: 3.1 [-0.8, 7.0])
    assert 0 < est.ci[0] < est.mean < est.ci[1]
    assert est.method == "log CLT" and est.se == pytest.approx(plain.se)
    # the t interval of log(x̄), delta-method SE = SE / x̄, mapped back; unclipped
    half = stats.t.ppf(0.975, len(values) - 1) * plain.se / est.mean
    assert est.ci == pytest.approx(tuple(est.mean * np.exp([-half, half])))
    assert est.ci[1] > plain.ci[1]  # longer upwards, as a skewed mean's distribution is


def test_a_clustered_non_negative_interval_uses_the_clustered_se_on_the_log_scale():
    x = [0.0, 2.0, 1.0, 9.0, 0.0, 7.0, 1.0, 0.0, 3.0]
    groups = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    plain = mean_interval(x, groups)
    est = mean_interval(x, groups, bounds=(0.0, math.inf))
    assert est.method == "log clustered (3 groups)" and est.se == pytest.approx(plain.se)
    half = stats.t.ppf(0.975, 2) * plain.se / est.mean
    assert est.ci == pytest.approx(tuple(est.mean * np.exp([-half, half])))


def test_a_negative_value_keeps_the_t_interval_of_a_non_negative_metric():
    est = mean_interval([-1.0, 2.0, 5.0], bounds=(0.0, math.inf))
    assert est.ci == pytest.approx(mean_interval([-1.0, 2.0, 5.0]).ci)
    assert "outside the declared bounds [0, inf]" in est.note


def test_non_negative_metrics_get_intervals_above_zero_and_differences_stay_signed():
    from evaluation.metrics import get_metric
    from evaluation.statistics import compare_scores

    for name in ("output_length", "latency_s", "ttft_s", "tokens_per_s"):
        assert get_metric(name).bounds == (0.0, math.inf), name
    lengths = [0.0, 0.0, 12.0, 1.0, 0.0, 3.0, 0.0, 6.0]
    rows = pd.DataFrame(
        {
            "config": "c",
            "case_id": [f"k{i}" for i in range(len(lengths))],
            "sample_index": 0,
            "metric": "output_length",
            "value": lengths,
            "group": None,
        }
    )
    (est,) = summarize(rows, bounds={"output_length": get_metric("output_length").bounds})
    assert est.ci[0] > 0 and est.method == "log CLT"
    longer = [v + 4.0 + i % 3 for i, v in enumerate(lengths)]  # outputs of another config
    diff = compare_scores(lengths, longer, bounds=get_metric("output_length").bounds)
    plain = compare_scores(lengths, longer)
    # a difference of non-negative means may be negative: its t interval, not cut at 0
    assert diff.diff < 0 and diff.diff_ci == pytest.approx(plain.diff_ci)
    assert diff.diff_ci[0] < diff.diff_ci[1] < 0 and "cut" not in diff.note


def test_zeros_and_ones_of_a_metric_on_another_scale_are_not_a_proportion():
    # output_length of one-word answers: a count of words, not a share (it got Wilson's
    # [0.90, 1.00] around a mean of 1 word when every output was one word)
    ones = mean_interval([1.0] * 12, bounds=(0.0, math.inf))
    assert ones.ci == (1.0, 1.0) and "degenerate" in ones.note
    some = mean_interval([1.0, 0.0, 1.0, 1.0, 1.0, 0.0], bounds=(0.0, math.inf))
    assert some.method == "log CLT" and some.ci[1] > 1.0  # words: the interval may pass 1
    assert mean_interval([1.0, 0.0, 1.0]).method == "Wilson"  # no scale declared: a share
    assert mean_interval([1.0, 0.0, 1.0], bounds=(0.0, 1.0)).method == "Wilson"


def test_groups_whose_residuals_cancel_get_the_unclustered_se_not_a_point():
    """Two groups with the same mean: the cluster sums cancel, SE_cl = 0 and the interval
    was a point (a paired t of 0/0 read p = 0). The unclustered SE is used there, and the
    note says so; a clustered SE that is merely small is kept (t on C − 1 df)."""
    x = [0.2, 0.8, 0.2, 0.8]
    est = mean_interval(x, ["a", "a", "b", "b"])
    assert est.se == pytest.approx(np.std(x, ddof=1) / 2) and est.method == "clustered (2 groups)"
    assert est.ci[0] < 0.5 < est.ci[1]
    assert "residuals cancel" in est.note
    near = mean_interval([0.2, 0.8, 0.25, 0.8], ["a", "a", "b", "b"])
    assert 0 < near.se < np.std([0.2, 0.8, 0.25, 0.8], ddof=1) / 2 and near.note == ""


@pytest.mark.parametrize(
    "labels", [["b", "a", "c", None, "a", "b"] * 5, [1, "a", 2.5, None, "a", 1] * 5]
)
def test_clustered_se_is_the_formula_whatever_the_labels(labels):
    """Clusters are numbered before the sums (labels of one type sorted, mixed ones as
    they come); the SE is Miller's whichever way they are numbered."""
    x = np.arange(len(labels), dtype=float) % 7
    est = mean_interval(x, labels)
    own = [f"own{i}" if g is None else repr(g) for i, g in enumerate(labels)]
    sums = pd.Series(x - x.mean()).groupby(own).sum().to_numpy()
    c, n = sums.size, x.size
    assert est.n_clusters == c and est.method == f"clustered ({c} groups)"
    assert est.se == pytest.approx(np.sqrt(np.sum(sums**2)) / n * np.sqrt(c / (c - 1)))
