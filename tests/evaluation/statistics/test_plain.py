"""evaluation/statistics/_plain.py against the scipy.stats, statsmodels and scipy.optimize
functions it stands in for: equal numbers, bit for bit, on many inputs (issue 46: a
run's comparison no longer loads those libraries)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.contingency_tables import mcnemar

from evaluation.statistics import _plain
from tests.evaluation.statistics._rows import sweep_analysis, sweep_rows
from tests.support.processes import python_output


def _same(mine, theirs) -> None:
    """Equal bit for bit (NaN where the library gives NaN)."""
    np.testing.assert_array_equal(np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float))


def _samples(seed: int, count: int, sizes=(2, 3, 5, 11, 51, 52, 97, 400, 3000)):
    """Continuous, skewed, 0/1, ordinal with ties and zeros, near-constant."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.choice(sizes))
        kind = rng.integers(6)
        if kind == 0:
            x = rng.normal(size=n)
        elif kind == 1:
            x = rng.lognormal(size=n) * 0.02
        elif kind == 2:
            x = rng.integers(0, 2, n).astype(float)
        elif kind == 3:
            x = rng.integers(-3, 4, n).astype(float)
        elif kind == 4:
            x = 1e6 + rng.normal(size=n) * 1e-3
        else:
            x = rng.exponential(size=n) - rng.exponential(size=n) * 0.5
        out.append(x)
    return out


def test_distributions_equal_scipy_stats():
    rng = np.random.default_rng(1)
    q = np.r_[rng.uniform(1e-9, 1 - 1e-9, 400), 0.975, 0.8, 0.5, 1e-12, 0.025 / 28]
    df = rng.integers(1, 5000, q.size).astype(float)
    x = rng.normal(scale=4, size=q.size)
    nc = rng.uniform(0, 40, q.size)
    _same(_plain.norm_ppf(q), stats.norm.ppf(q))
    _same(_plain.norm_cdf(x), stats.norm.cdf(x))
    _same(_plain.t_sf(x, df), stats.t.sf(x, df))
    _same(_plain.t_ppf(q, df), stats.t.ppf(q, df))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(_plain.nct_sf(np.abs(x), df, nc), stats.nct.sf(np.abs(x), df, nc))
        _same(_plain.nct_cdf(-np.abs(x), df, nc), stats.nct.cdf(-np.abs(x), df, nc))
    for scalar in (1.96, 2.5):  # scalars, as power.py asks
        assert float(_plain.nct_sf(scalar, 99.0, 3.0)) == float(stats.nct.sf(scalar, 99, 3.0))
        assert float(_plain.t_ppf(0.99, 7)) == float(stats.t.ppf(0.99, 7))


def test_binomial_equals_scipy_stats():
    rng = np.random.default_rng(2)
    d = np.arange(0, 3000)
    for level in (0.05, 0.05 / 28, 0.01, 1e-6, 0.3):
        _same(_plain.binom_ppf(level / 2, d, 0.5), stats.binom.ppf(level / 2, d, 0.5))
        k = stats.binom.ppf(level / 2, d, 0.5)
        _same(_plain.binom_cdf(k, d, 0.5), stats.binom.cdf(k, d, 0.5))
        _same(_plain.binom_cdf(k - 1, d, 0.5), stats.binom.cdf(k - 1, d, 0.5))
    n = 12_500
    for psi in rng.uniform(0.001, 1, 30):
        dd = np.arange(0, n + 1)
        _same(_plain.binom_pmf(dd, n, psi), stats.binom.pmf(dd, n, psi))
    for b10, b01 in [(0, 0), (0, 3), (5, 5), (17, 40), (1200, 1311), (3, 0), (250, 2)]:
        res = mcnemar([[10, b10], [b01, 20]], exact=True)
        assert _plain.mcnemar_exact(b10, b01) == (float(res.statistic), float(res.pvalue))


def test_brentq_equals_scipy_optimize():
    rng = np.random.default_rng(3)
    functions = [
        lambda x: x**3 - 2 * x - 5,
        lambda x: np.cos(x) - x,
        lambda x: float(_plain.norm_cdf(x)) - 0.8,
        lambda x: np.exp(x) - 30.0,
    ]
    for f in functions:
        for a, b in [(-1.0, 3.0), (0.0, 4.0), (-2.5, 5.0)]:
            if np.sign(f(a)) == np.sign(f(b)):
                continue
            for xtol in (1e-9, 1e-10, 2e-12):
                assert _plain.brentq(f, a, b, xtol=xtol) == optimize.brentq(f, a, b, xtol=xtol)
    for target in rng.uniform(0.05, 0.99, 40):  # power.py's own kind of curve
        df = int(rng.integers(1, 20_000))

        def curve(nc, df=df, target=target):
            upper, lower = float(_plain.nct_sf(2.0, df, nc)), float(_plain.nct_cdf(-2.0, df, nc))
            upper = (1.0 if nc > 2.0 else 0.0) if np.isnan(upper) else upper
            return upper + (0.0 if np.isnan(lower) else lower) - target

        assert _plain.brentq(curve, 0.0, 64.0, xtol=1e-10) == optimize.brentq(
            curve, 0.0, 64.0, xtol=1e-10
        )
    with pytest.raises(ValueError, match="different signs"):
        _plain.brentq(lambda x: x * x + 1, -1.0, 1.0)


def test_descriptives_equal_scipy_stats():
    for x in _samples(4, 150):
        _same(_plain.rankdata(x), stats.rankdata(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if x.size > 2:
                _same(_plain.skew_unbiased(x), stats.skew(x, bias=False))
        y = x[::-1] * 0.5 + np.random.default_rng(x.size).normal(size=x.size)
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            _same(_plain.pearson_r(x, y), stats.pearsonr(x, y).statistic)


def test_tests_equal_scipy_stats():
    rng = np.random.default_rng(5)
    for a in _samples(6, 80, sizes=(51, 52, 97, 400, 3000)):
        b = a + rng.normal(size=a.size) * rng.choice([0.0, 0.3, 2.0])
        if rng.integers(3) == 0:  # ties and zeros among the differences
            b = np.round(b)
            a = np.round(a)
        d = a - b
        if np.ptp(d) > 0:
            t, p = stats.ttest_rel(a, b)
            assert _plain.ttest_rel(a, b) == (float(t), float(p))
        if np.any(d != 0):
            for zero_method in ("pratt", "zsplit", "wilcox"):
                if zero_method == "wilcox" and np.count_nonzero(d) == 0:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = stats.wilcoxon(d, zero_method=zero_method)
                assert _plain.wilcoxon(d, zero_method) == (float(res.statistic), float(res.pvalue))


def test_rank_correlation_equals_scipy_stats():
    rng = np.random.default_rng(7)
    for n in (3, 4, 5, 8, 9, 10, 40):
        for _ in range(3):
            x = rng.choice([0.0, 0.1, 0.2, 0.4, 0.7, 1.0], n) if n > 6 else rng.normal(size=n)
            y = rng.normal(size=n) + x * rng.choice([0, 1, 5])
            if np.ptp(x) == 0:
                continue
            res = stats.spearmanr(x, y)
            assert _plain.spearman(x, y) == (float(res.statistic), float(res.pvalue))
            if n < 10:
                rx, ry = stats.rankdata(x), stats.rankdata(y)
                seed = int(rng.integers(1000))
                want = stats.permutation_test(
                    (rx, ry),
                    lambda a, b, axis: stats.pearsonr(a, b, axis=axis).statistic,
                    permutation_type="pairings",
                    vectorized=True,
                    n_resamples=9999,
                    rng=np.random.default_rng(seed),
                ).pvalue
                assert _plain.rank_pairings_p(rx, ry, 9999, seed) == float(want)


def test_a_sweeps_analysis_is_the_one_scipy_stats_gives(monkeypatch):
    """The whole analysis (comparisons, tests, power, parameter effects) with ``_plain``
    and again with the scipy.stats, statsmodels and scipy.optimize functions in its place:
    the same report, every number's repr equal."""
    scores, facts = sweep_rows()
    ours = repr(sweep_analysis(scores, facts))
    from evaluation.statistics import _paired_tests, effects, power

    def pair(res):
        return float(res.statistic), float(res.pvalue)

    with monkeypatch.context() as m:
        m.setattr(_plain, "skew_unbiased", lambda d: float(stats.skew(d, bias=False)))
        m.setattr(_plain, "rankdata", stats.rankdata)
        m.setattr(_plain, "ttest_rel", lambda a, b: pair(stats.ttest_rel(a, b)))
        m.setattr(_plain, "t_sf", stats.t.sf)
        m.setattr(_plain, "wilcoxon", lambda d, z: pair(stats.wilcoxon(d, zero_method=z)))
        m.setattr(_plain, "pearson_r", lambda a, b: stats.pearsonr(a, b).statistic)
        m.setattr(_plain, "spearman", lambda x, y: pair(stats.spearmanr(x, y)))
        m.setattr(_plain, "norm_ppf", stats.norm.ppf)
        m.setattr(
            _plain,
            "mcnemar_exact",
            lambda b10, b01: pair(mcnemar([[0, b10], [b01, 0]], exact=True)),
        )
        m.setattr(
            _plain,
            "rank_pairings_p",
            lambda x, y, n, seed: float(
                stats.permutation_test(
                    (x, y),
                    lambda a, b, axis: stats.pearsonr(a, b, axis=axis).statistic,
                    permutation_type="pairings",
                    vectorized=True,
                    n_resamples=n,
                    rng=np.random.default_rng(seed),
                ).pvalue
            ),
        )
        for name, theirs in {
            "binom_cdf": stats.binom.cdf,
            "binom_pmf": stats.binom.pmf,
            "binom_ppf": stats.binom.ppf,
            "brentq": optimize.brentq,
            "nct_cdf": stats.nct.cdf,
            "nct_sf": stats.nct.sf,
            "norm_cdf": stats.norm.cdf,
            "norm_ppf": stats.norm.ppf,
            "t_ppf": stats.t.ppf,
        }.items():
            m.setattr(power, name, theirs)
        power._nc_for_power.cache_clear()
        power._mcnemar_cutoffs.cache_clear()
        assert _paired_tests._plain is _plain and effects._plain is _plain
        theirs = repr(sweep_analysis(scores, facts))
    power._nc_for_power.cache_clear()
    power._mcnemar_cutoffs.cache_clear()
    assert "exact McNemar" in ours and "Wilcoxon" in ours and "paired" in ours
    assert ours == theirs


def test_a_sweeps_analysis_loads_no_scipy_stats_statsmodels_or_optimize():
    """What a sweep's comparison runs leaves those libraries unloaded (~70 MiB of a
    run's process; issue 46)."""
    script = (
        "import sys\n"
        "from tests.evaluation.statistics._rows import sweep_analysis, sweep_rows\n"
        "report = sweep_analysis(*sweep_rows())\n"
        "assert report.comparisons and report.effects\n"
        "heavy = ('scipy.stats', 'statsmodels', 'scipy.optimize')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert python_output(script).strip() == "[]"
