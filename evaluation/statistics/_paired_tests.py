"""The paired tests themselves: which one ``auto`` picks, and running it. The tests a
sweep's comparison runs (t, clustered t, McNemar, Wilcoxon on more than 50 cases) come
from ``_plain`` (scipy.special and numpy, the numbers of scipy.stats and statsmodels bit
for bit); the bootstrap and the permutation test, asked for by name, import scipy.stats.
Library warnings become notes on the result instead of stray warnings."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np

from evaluation.statistics import _plain
from evaluation.statistics._cases import is_constant
from evaluation.statistics.intervals import MeanEstimate

ScoreType = Literal["binary", "continuous", "ordinal"]
PairedTest = Literal["auto", "mcnemar", "t", "wilcoxon", "clustered_t", "bootstrap", "permutation"]
ZeroMethod = Literal["pratt", "zsplit", "wilcox"]

SKEW_THRESHOLD = 1.0
SKEW_MIN_N = 10

TEST_NAMES = {
    "mcnemar": "exact McNemar",
    "t": "paired t",
    "wilcoxon": "Wilcoxon signed-rank",
    "clustered_t": "clustered paired t",
    "bootstrap": "paired bootstrap",
    "permutation": "paired permutation",
}


def is_binary(*arrays: np.ndarray) -> bool:
    return all(np.isin(x, (0.0, 1.0)).all() for x in arrays)


def choose_test(
    score_type: ScoreType, a: np.ndarray, b: np.ndarray, clustered: bool
) -> tuple[str, str]:
    """The test ``auto`` picks for aligned per-case scores, and why (empty when it is the
    score type's default): groups → clustered t (rank and exact tests assume independent
    cases); binary with one 0/1 score per case → exact McNemar; binary averaged over
    samples → paired t; ordinal → Wilcoxon; continuous → paired t, or Wilcoxon when
    n ≥ 10 and the differences' sample skewness exceeds 1 in absolute value."""
    d = a - b
    if clustered:
        return "clustered_t", "cases share groups: clustered t"
    if score_type == "binary":
        if is_binary(a, b):
            return "mcnemar", ""
        return (
            "t",
            "binary scores averaged over samples: paired t on the case means "
            "(McNemar needs one 0/1 score per case)",
        )
    if score_type == "ordinal":
        return "wilcoxon", ""
    if d.size >= SKEW_MIN_N and not is_constant(d):
        skew = _plain.skew_unbiased(d)
        if abs(skew) > SKEW_THRESHOLD:
            return "wilcoxon", f"differences clearly skewed (skewness {skew:.2f}): Wilcoxon"
    return "t", ""


def check_requested(test: str, a: np.ndarray, b: np.ndarray, clustered: bool) -> tuple[str, str]:
    """Validate an explicitly requested test; ValueError for one that cannot apply."""
    if test not in TEST_NAMES:
        raise ValueError(f"unknown paired test {test!r}; choose from {['auto', *TEST_NAMES]}")
    if test == "mcnemar" and not is_binary(a, b):
        raise ValueError("McNemar needs one 0/1 score per case for both configs")
    if test == "clustered_t" and not clustered:
        return "t", "clustered t asked for, but the cases form fewer than two groups: paired t"
    return test, ""


def rank_biserial(d: np.ndarray, zero_method: ZeroMethod = "pratt") -> float | None:
    """Matched-pairs rank-biserial r = (R+ − R−)/(R+ + R−) (Kerby 2014), ranks of |d|
    treated like ``scipy.stats.wilcoxon``'s ``zero_method``: "wilcox" ranks the non-zero
    differences only, "pratt" ranks all and drops the zeros' ranks, "zsplit" splits the
    zeros' ranks between R+ and R−. Undefined (None) when every rank sum is zero."""
    d = np.asarray(d, dtype=float)
    if zero_method == "wilcox":
        d = d[d != 0]
    ranks = _plain.rankdata(np.abs(d))
    r_plus = ranks[d > 0].sum()
    r_minus = ranks[d < 0].sum()
    if zero_method == "zsplit":
        half = ranks[d == 0].sum() / 2
        r_plus, r_minus = r_plus + half, r_minus + half
    total = r_plus + r_minus
    return None if total == 0 else float((r_plus - r_minus) / total)


@contextmanager
def warnings_to_notes(notes: list[str]) -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    notes.extend(f"scipy/statsmodels: {w.message}" for w in caught)


def run_test(
    test: str,
    a: np.ndarray,
    b: np.ndarray,
    diff: MeanEstimate,
    notes: list[str],
    *,
    confidence: float,
    zero_method: ZeroMethod,
    n_resamples: int,
    seed: int,
) -> tuple[float, float, float | None, str, tuple[float, float] | None]:
    """(statistic, p, effect size, its name, bootstrap interval or None) for ``test``;
    ``diff`` is the mean difference with its (possibly clustered) SE."""
    d = a - b
    sd = 0.0 if is_constant(d) else float(np.std(d, ddof=1))
    d_z = None if sd == 0 else float(d.mean() / sd)
    with warnings_to_notes(notes):
        if test == "mcnemar":
            b10, b01 = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
            statistic, p = _plain.mcnemar_exact(b10, b01)  # statsmodels' exact mcnemar
            notes.append(f"discordant pairs: {b10} favour A, {b01} favour B")
            return statistic, p, d_z, "d_z", None
        if test == "t":
            statistic, p = _plain.ttest_rel(a, b)
            return statistic, p, d_z, "d_z", None
        if test == "clustered_t":
            t = float(d.mean() / diff.se)
            return t, float(2 * _plain.t_sf(abs(t), diff.n_clusters - 1)), d_z, "d_z", None
        if test == "wilcoxon":
            statistic, p = _plain.wilcoxon(d, zero_method)
            r = rank_biserial(d, zero_method)
            return statistic, p, r, "rank-biserial r", None
        from scipy import stats  # the resampling tests: asked for by name

        if test == "permutation":
            res = stats.permutation_test(
                (a, b),
                _mean_diff,
                permutation_type="samples",
                vectorized=True,
                n_resamples=n_resamples,
                rng=np.random.default_rng(seed),
            )
            return float(res.statistic), float(res.pvalue), d_z, "d_z", None
        stat, p, ci = _bootstrap(a, b, notes, confidence, n_resamples, seed)
        return stat, p, d_z, "d_z", ci


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def _bootstrap(a, b, notes, confidence, n_resamples, seed):
    """Paired bootstrap of d̄ (``scipy.stats.bootstrap``, ``paired=True``): BCa, percentile
    when BCa warns or fails; p by inverting the percentile interval,
    p = 2·(min(#{d̄* ≤ 0}, #{d̄* ≥ 0}) + 1)/(B + 1)."""
    from scipy import stats

    kw = dict(paired=True, vectorized=True, n_resamples=n_resamples, confidence_level=confidence)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = stats.bootstrap(
            (a, b), _mean_diff, method="BCa", rng=np.random.default_rng(seed), **kw
        )
    low, high = res.confidence_interval
    if caught or not (np.isfinite(low) and np.isfinite(high)):
        notes.append("BCa unusable on these data; percentile interval")
        res = stats.bootstrap(
            (a, b), _mean_diff, method="percentile", rng=np.random.default_rng(seed), **kw
        )
        low, high = res.confidence_interval
    dist = res.bootstrap_distribution
    tail = min(np.sum(dist <= 0), np.sum(dist >= 0)) + 1
    return float(np.mean(a - b)), float(2 * tail / (dist.size + 1)), (float(low), float(high))


def correlation(a: np.ndarray, b: np.ndarray, names: tuple[str, str], notes: list[str]):
    """Pearson r of the two configs' case scores (phi for 0/1); None when one is constant."""
    constant = [name for name, x in zip(names, (a, b), strict=True) if is_constant(x)]
    if constant:
        notes.append(
            f"correlation undefined: {' and '.join(constant)} scored the same on every case"
        )
        return None
    return float(_plain.pearson_r(a, b))
