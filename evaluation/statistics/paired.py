"""Paired comparison of two configs on the cases both completed.

Source: Miller (2024), arXiv 2411.00640, "Paired differences": with d_i = s_A,i − s_B,i,
the difference of means is d̄ with SE = sqrt(Var(d)/n) (clustered when cases share a
group), which removes the variance of case difficulty that A and B share. The test that
``test="auto"`` picks is described in :func:`choose_test`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from evaluation.statistics._cases import CaseTable, case_table, is_constant
from evaluation.statistics._paired_tests import (
    TEST_NAMES,
    PairedTest,
    ScoreType,
    ZeroMethod,
    check_requested,
    choose_test,
    correlation,
    is_binary,
    rank_biserial,
    run_test,
)
from evaluation.statistics.intervals import mean_interval
from evaluation.statistics.tango import tango_interval

NO_INTERVAL = "no interval (a spread of 0 cannot bound the difference on cases not run)"

__all__ = [
    "PairedComparison",
    "PairedTest",
    "ScoreType",
    "ZeroMethod",
    "choose_test",
    "compare_in_table",
    "compare_pair",
    "compare_scores",
    "rank_biserial",
]


@dataclass(frozen=True)
class PairedComparison:
    """A versus B on one metric. ``diff = mean_a − mean_b`` over the shared cases; ``None``
    marks a value that is undefined for these data, and ``note`` says why."""

    a: str
    b: str
    metric: str
    n_used: int
    n_excluded: int
    exclusion_reasons: dict[str, int]
    mean_a: float | None = None
    mean_b: float | None = None
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    test: str = "none"
    statistic: float | None = None
    p_value: float | None = None
    effect_size: float | None = None
    effect_size_name: str = ""
    correlation: float | None = None
    note: str = ""
    sd_diff: float | None = None
    n_clusters: int | None = None
    confidence: float = 0.95
    score_type: str = "continuous"
    se_diff: float | None = None
    n_discordant: int | None = None


@dataclass(frozen=True)
class _Options:
    score_type: ScoreType
    test: PairedTest
    confidence: float
    zero_method: ZeroMethod
    n_resamples: int
    seed: int
    bounds: tuple[float, float] | None = None


def compare_pair(
    scores: pd.DataFrame,
    a: str,
    b: str,
    metric: str,
    *,
    score_type: ScoreType,
    test: PairedTest = "auto",
    confidence: float = 0.95,
    zero_method: ZeroMethod = "pratt",
    n_resamples: int = 9999,
    seed: int = 0,
) -> PairedComparison:
    """Compare configs ``a`` and ``b`` on ``metric`` from long score rows (the K samples of
    a case averaged first). The statistics are those of :func:`compare_scores`."""
    return compare_in_table(
        case_table(scores, metric),
        a,
        b,
        score_type=score_type,
        test=test,
        confidence=confidence,
        zero_method=zero_method,
        n_resamples=n_resamples,
        seed=seed,
    )


def compare_in_table(
    table: CaseTable,
    a: str,
    b: str,
    *,
    score_type: ScoreType,
    test: PairedTest = "auto",
    confidence: float = 0.95,
    zero_method: ZeroMethod = "pratt",
    n_resamples: int = 9999,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> PairedComparison:
    """:func:`compare_pair` on a prepared :class:`CaseTable` (built once for many pairs).
    ``bounds``: the metric's scale (0/1 scores: [0, 1]), which bounds the difference.
    A case either config lacks is excluded; it counts once in ``n_excluded`` and under
    each reason that applies in ``exclusion_reasons``."""
    opts = _Options(score_type, test, confidence, zero_method, n_resamples, seed, bounds)
    unknown = [c for c in (a, b) if c not in table.means.columns]
    if unknown:
        note = f"no scores for {', '.join(map(repr, unknown))} on metric {table.metric!r}"
        return PairedComparison(a, b, table.metric, 0, 0, {}, note=note, score_type=score_type)
    ma, mb = (table.means[c].to_numpy(dtype=float, na_value=np.nan) for c in (a, b))
    both = ~(np.isnan(ma) | np.isnan(mb))
    reasons: dict[str, int] = {}
    if not both.all():  # the reasons' lookups cost ~1 ms a pair: only where a case is out
        excluded = table.means.index[~both]
        per_config = [table.exclusion_reasons(config, excluded) for config in (a, b)]
        for case_reasons in zip(*per_config, strict=True):
            for reason in case_reasons:
                if reason:
                    reasons[reason] = reasons.get(reason, 0) + 1
    groups = None if table.groups is None else table.groups.to_numpy()[both]
    base = PairedComparison(a, b, table.metric, 0, int((~both).sum()), reasons)
    return _compare(ma[both], mb[both], groups, base, opts)


def compare_scores(
    a_scores: np.ndarray | list[float],
    b_scores: np.ndarray | list[float],
    *,
    groups: np.ndarray | list[object] | None = None,
    score_type: ScoreType = "continuous",
    test: PairedTest = "auto",
    confidence: float = 0.95,
    zero_method: ZeroMethod = "pratt",
    n_resamples: int = 9999,
    seed: int = 0,
    a: str = "A",
    b: str = "B",
    metric: str = "",
    bounds: tuple[float, float] | None = None,
) -> PairedComparison:
    """Paired comparison of two aligned per-case score vectors (NaN = unscorable).

    Difference: d̄ ± t·SE with SE = sd(d)/√n, or clustered by ``groups`` (Miller 2024,
    paired differences; formulas in :func:`mean_interval`); for one 0/1 score per case
    (``score_type="binary"``) Tango's score interval for paired proportions
    (:func:`tango_interval`; also where grouped cases all differ by the same amount).
    Differences that are all equal on any other scale get no interval (None, and the
    note says so): a spread of 0 would give a point. Tests: exact McNemar on the
    discordant counts (statsmodels ``mcnemar(exact=True)``); paired t
    (``scipy.stats.ttest_rel``); Wilcoxon signed-rank with an explicit ``zero_method``
    (``scipy.stats.wilcoxon``; "pratt" by default, since "wilcox" drops the zero
    differences that dominate ordinal data); clustered t = d̄/SE_cl on C − 1 df; paired
    bootstrap (``scipy.stats.bootstrap(paired=True)``, seeded, its interval replaces the
    t interval) and sign-flip permutation (``scipy.stats.permutation_test``, seeded).
    Effect size: d_z = d̄/sd(d), or the matched-pairs rank-biserial r for Wilcoxon.
    Correlation: Pearson r of A's and B's scores. n = 0 or 1, identical scores and
    constant differences are explained in ``note``, never reported as 0 or NaN.
    The difference's interval stays within ±(hi − lo) of the metric's scale ``bounds``
    (0/1 scores: [0, 1]); cut there, the note says so.
    """
    xa, xb = np.asarray(a_scores, dtype=float), np.asarray(b_scores, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError(f"score vectors differ in length: {xa.size} vs {xb.size}")
    g = None if groups is None else np.asarray(groups, dtype=object)
    reasons = {
        f"unscorable (NaN) for {name}": int(np.isnan(x).sum())
        for name, x in ((a, xa), (b, xb))
        if np.isnan(x).any()
    }
    keep = ~(np.isnan(xa) | np.isnan(xb))
    base = PairedComparison(a, b, metric, 0, int((~keep).sum()), reasons)
    opts = _Options(score_type, test, confidence, zero_method, n_resamples, seed, bounds)
    return _compare(xa[keep], xb[keep], None if g is None else g[keep], base, opts)


def _compare(xa, xb, g, base: PairedComparison, opts: _Options) -> PairedComparison:
    base = replace(base, confidence=opts.confidence, score_type=opts.score_type)
    n = int(xa.size)
    if n == 0:
        return replace(
            base, note=f"no case scored by both {base.a} and {base.b}: nothing to compare"
        )
    d = xa - xb
    base = replace(
        base, n_used=n, mean_a=float(xa.mean()), mean_b=float(xb.mean()), diff=float(d.mean())
    )
    if n < 2:
        return replace(base, note="n = 1 shared case: interval and test undefined (need n ≥ 2)")
    notes: list[str] = []
    est = mean_interval(d, g, confidence=opts.confidence, proportion=False)
    constant = is_constant(d)
    notes += [x for x in est.note.split("; ") if x and not (constant and _of_zero_spread(x))]
    clustered = est.method.startswith("clustered")
    if opts.test == "auto":
        test, why = choose_test(opts.score_type, xa, xb, clustered)
    else:
        test, why = check_requested(opts.test, xa, xb, clustered)
    notes += [why] if why else []
    if clustered and test != "clustered_t":
        notes.append(f"{TEST_NAMES[test]} treats cases as independent though they share groups")
    ci = est.ci
    if constant and abs(base.diff) <= 1e-12:
        notes.append(f"{base.a} and {base.b} scored identically on every shared case")
        stat, p, effect = 0.0, 1.0, None
        effect_name = "rank-biserial r" if test == "wilcoxon" else "d_z"
    else:
        if constant and test in ("t", "clustered_t"):
            notes.append("every case differs by the same amount: t undefined, Wilcoxon used")
            test = "wilcoxon"
        stat, p, effect, effect_name, boot_ci = run_test(
            test,
            xa,
            xb,
            est,
            notes,
            confidence=opts.confidence,
            zero_method=opts.zero_method,
            n_resamples=opts.n_resamples,
            seed=opts.seed,
        )
        ci = boot_ci or ci
        stat, p = _defined(stat, p, base.diff, notes)
    if opts.score_type == "binary" and is_binary(xa, xb) and (constant or not clustered):
        if not (opts.test == "bootstrap" and not constant):
            ci = _tango(xa, xb, clustered, notes, opts.confidence)
            if not ci[0] <= 0 <= ci[1] and p is not None and p > 1 - opts.confidence:
                notes.append(
                    f"the interval leaves out 0 though p = {p:.2g} does not: it inverts "
                    f"McNemar's asymptotic test, which {int(np.count_nonzero(d))} "
                    "discordant cases are too few for; the exact test's p is the one to read"
                )
    elif constant:
        ci = None
        notes.append(f"all {n} differences equal {base.diff:+.4g}: {NO_INTERVAL}")
    ci = _within_scale(ci, xa, xb, opts, est.n_clusters, notes)
    if effect is None:
        notes.append(f"effect size {effect_name} undefined: the differences have no spread")
    corr = correlation(xa, xb, (base.a, base.b), notes)
    return replace(
        base,
        diff_ci=ci,
        test=TEST_NAMES[test],
        statistic=stat,
        p_value=None if p is None else min(1.0, max(0.0, p)),
        effect_size=effect,
        effect_size_name=effect_name,
        correlation=corr,
        note="; ".join(dict.fromkeys(notes)),
        sd_diff=0.0 if constant else float(np.std(d, ddof=1)),
        n_clusters=est.n_clusters,
        se_diff=est.se,
        n_discordant=int(np.count_nonzero(d)),
    )


def _of_zero_spread(note: str) -> bool:
    """The mean's note on a point interval (``mean_interval``), not the one shown here."""
    return note.startswith("zero variance") or note in (
        "the interval is degenerate",
        "Wilson interval at n",
    )


def _tango(xa, xb, clustered: bool, notes: list[str], confidence: float) -> tuple[float, float]:
    """Tango's score interval for the paired difference of 0/1 scores: the t interval on
    the case differences is a point where they are all equal (8 cases A alone got right
    read [+1, +1]), and it leaves [-1, 1] on few cases."""
    b10, b01 = int(np.sum((xa == 1) & (xb == 0))), int(np.sum((xa == 0) & (xb == 1)))
    if clustered:
        notes.append(
            "every case differs by the same amount, so the groups' effect cannot be "
            "estimated: Tango's interval, which treats cases as independent"
        )
    return tango_interval(b10, b01, int(xa.size), confidence)


def _defined(
    stat: float, p: float, diff: float, notes: list[str]
) -> tuple[float | None, float | None]:
    """The test's statistic and p where both are numbers. A statistic that is not (0/0,
    x/0: no spread left to test against) has no p: max(0, NaN) read 0 and marked a
    difference of exactly 0 significant. With d̄ = 0 there is no evidence of a
    difference whatever the spread (t = 0, p = 1); otherwise p is undefined (None),
    which the adjustment leaves out and no output counts as significant."""
    if math.isfinite(stat) and math.isfinite(p):
        return stat, p
    if abs(diff) <= 1e-12:
        notes.append("test statistic 0/0 with a mean difference of 0: p = 1")
        return 0.0, 1.0
    notes.append("test statistic undefined (no spread to test against): p undefined")
    return None, None


def _within_scale(
    ci: tuple[float, float] | None,
    xa: np.ndarray,
    xb: np.ndarray,
    opts: _Options,
    n_clusters: int | None,
    notes: list[str],
) -> tuple[float, float] | None:
    """The difference's interval cut to the differences the scale allows: on [lo, hi]
    (0/1 scores: [0, 1]) a difference of means lies in [−(hi − lo), hi − lo]. With few
    groups the clustered t interval (t on C − 1 df: 12.7 at 2 groups) reaches past it;
    what is left says only that the data cannot bound the difference more tightly, and
    the note says so."""
    bounds = opts.bounds
    if bounds is None and (opts.score_type == "binary" or np.isin(np.r_[xa, xb], (0, 1)).all()):
        bounds = (0.0, 1.0)
    if ci is None or bounds is None:
        return ci
    lo, hi = bounds
    if not (lo <= float(np.min(np.r_[xa, xb])) and float(np.max(np.r_[xa, xb])) <= hi):
        return ci  # values off the declared scale: nothing to cut to
    width = hi - lo
    if -width <= ci[0] and ci[1] <= width:
        return ci
    few = f": {n_clusters} groups are too few to bound it more" if n_clusters else ""
    notes.append(f"interval cut to the scale's range of differences [{-width:g}, {width:g}]{few}")
    return (max(-width, ci[0]), min(width, ci[1]))
