"""Power and sample size for paired comparisons.

Source: Miller (2024), arXiv 2411.00640, "Power analysis": for a paired comparison with
K_A, K_B samples per case,

    n = (z_{1−α/2} + z_{1−β})² · (ω² + σ_A²/K_A + σ_B²/K_B) / δ²,
    ω² = Var(x_A) + Var(x_B) − 2·Cov(x_A, x_B),

σ² the within-case variance across samples; with K = 1 the bracket is Var(d). Solved for
δ at a given n it is the minimum detectable difference. With m comparisons α is replaced
by α/m (Bonferroni), which is conservative next to Holm or Benjamini–Hochberg.

Those z formulas plan a sweep. The power stored beside a comparison is that of the test
the comparison ran (:func:`power_for_test`): the paired t on n − 1 df (noncentral t), the
clustered paired t on C − 1 df with the clustered standard error (a one-sample t on the
cluster means), and the exact McNemar test by enumerating its binomial rejection region.
The distributions and the root finder are ``_plain``'s (scipy.stats' and scipy.optimize's
numbers, bit for bit, from scipy.special): a sweep's comparison computes this power for
every pair, and those libraries held ~70 MiB of its process (issue 46).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from evaluation.statistics._cases import is_constant
from evaluation.statistics._plain import (
    binom_cdf,
    binom_pmf,
    binom_ppf,
    brentq,
    nct_cdf,
    nct_sf,
    norm_cdf,
    norm_ppf,
    t_ppf,
)


@dataclass(frozen=True)
class PowerAnalysis:
    """What a paired comparison can detect; ``None`` means undefined (see note)."""

    var_diff: float | None
    n: int | None
    min_detectable_difference: float | None
    delta: float | None
    cases_needed: int | None
    alpha: float
    power: float
    n_comparisons: int
    samples_per_case: int = 1
    note: str = ""
    test: str = "z"
    n_clusters: int | None = None
    clusters_needed: int | None = None


def z_sum(alpha: float = 0.05, power: float = 0.80, n_comparisons: int = 1) -> float:
    """z_{1−α/(2m)} + z_{power}: 1.96 + 0.84 = 2.80 for α = 0.05, 80% power, m = 1."""
    _check_levels(alpha, power, n_comparisons)
    return float(norm_ppf(1 - alpha / (2 * n_comparisons)) + norm_ppf(power))


def paired_diff_variance(
    var_a: float,
    var_b: float,
    correlation: float,
    *,
    within_var_a: float = 0.0,
    within_var_b: float = 0.0,
    samples_per_case: int = 1,
) -> float:
    """ω² + σ_A²/K + σ_B²/K with ω² = Var_A + Var_B − 2ρ·sqrt(Var_A·Var_B) (Miller 2024).

    ``var_a``/``var_b`` are the variances of the per-case true scores (for 0/1 scores at
    accuracy p, p(1 − p) when the within-case variances are left at 0)."""
    if var_a < 0 or var_b < 0 or within_var_a < 0 or within_var_b < 0:
        raise ValueError("variances must be ≥ 0")
    if not -1 <= correlation <= 1:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
    if samples_per_case < 1:
        raise ValueError("samples_per_case must be ≥ 1")
    omega2 = var_a + var_b - 2 * correlation * math.sqrt(var_a * var_b)
    return max(0.0, omega2) + (within_var_a + within_var_b) / samples_per_case


def min_detectable_difference(
    var_diff: float, n: int, *, alpha: float = 0.05, power: float = 0.80, n_comparisons: int = 1
) -> float:
    """δ = (z_{1−α/(2m)} + z_{power}) · sqrt(Var(d)/n) (Miller 2024, power analysis)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    if var_diff < 0:
        raise ValueError("var_diff must be ≥ 0")
    return z_sum(alpha, power, n_comparisons) * math.sqrt(var_diff / n)


def cases_needed(
    var_diff: float,
    delta: float,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> int:
    """n = ⌈(z_{1−α/(2m)} + z_{power})² · Var(d) / δ²⌉ (Miller 2024, power analysis)."""
    if delta == 0:
        raise ValueError("delta must be non-zero")
    if var_diff < 0:
        raise ValueError("var_diff must be ≥ 0")
    return max(1, math.ceil(z_sum(alpha, power, n_comparisons) ** 2 * var_diff / delta**2))


def predicted_power(
    var_diff: float, n: int, delta: float, *, alpha: float = 0.05, n_comparisons: int = 1
) -> float:
    """Power of the two-sided z-test: Φ(|δ|/SE − z) + Φ(−|δ|/SE − z), SE = sqrt(Var(d)/n)."""
    _check_levels(alpha, 0.5, n_comparisons)
    se = math.sqrt(var_diff / n)
    z = norm_ppf(1 - alpha / (2 * n_comparisons))
    shift = abs(delta) / se
    return float(norm_cdf(shift - z) + norm_cdf(-shift - z))


def power_analysis(
    var_diff: float | None,
    *,
    n: int | None = None,
    delta: float | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
    samples_per_case: int = 1,
    note: str = "",
) -> PowerAnalysis:
    """Minimum detectable difference at ``n`` and cases needed for ``delta`` from Var(d).
    Undefined (None, with a note) when Var(d) is unknown or zero or n < 2."""
    notes = [note] if note else []
    mdd = needed = None
    if var_diff is None:
        notes.append("variance of the differences unknown: power undefined")
    elif var_diff == 0:
        notes.append("differences have zero variance: the power formula is degenerate")
    else:
        if n is not None and n >= 2:
            mdd = min_detectable_difference(
                var_diff, n, alpha=alpha, power=power, n_comparisons=n_comparisons
            )
        elif n is not None:
            notes.append(f"n = {n}: minimum detectable difference undefined (need n ≥ 2)")
        if delta is not None:
            needed = cases_needed(
                var_diff, delta, alpha=alpha, power=power, n_comparisons=n_comparisons
            )
    return PowerAnalysis(
        var_diff=var_diff,
        n=n,
        min_detectable_difference=mdd,
        delta=delta,
        cases_needed=needed,
        alpha=alpha,
        power=power,
        n_comparisons=n_comparisons,
        samples_per_case=samples_per_case,
        note="; ".join(notes),
    )


def power_from_variances(
    var_a: float,
    var_b: float,
    correlation: float,
    *,
    within_var_a: float = 0.0,
    within_var_b: float = 0.0,
    samples_per_case: int = 1,
    n: int | None = None,
    delta: float | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> PowerAnalysis:
    """Power from assumed variances and correlation (no pilot): see
    :func:`paired_diff_variance` and :func:`power_analysis`."""
    var_diff = paired_diff_variance(
        var_a,
        var_b,
        correlation,
        within_var_a=within_var_a,
        within_var_b=within_var_b,
        samples_per_case=samples_per_case,
    )
    return power_analysis(
        var_diff,
        n=n,
        delta=delta,
        alpha=alpha,
        power=power,
        n_comparisons=n_comparisons,
        samples_per_case=samples_per_case,
    )


def power_from_pilot(
    a_scores: Sequence[float] | np.ndarray,
    b_scores: Sequence[float] | np.ndarray,
    *,
    samples_per_case: int | None = None,
    n: int | None = None,
    delta: float | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> PowerAnalysis:
    """Power from a pilot's paired scores, aligned by case: 1-D (one score per case) or
    2-D (cases × samples, NaN for missing samples).

    With a 2-D pilot, ω² = Var(m_A − m_B) − σ_A²/K_A − σ_B²/K_B (floored at 0) from the
    case means m and mean within-case variances σ², then Miller's bracket is rebuilt for
    the planned ``samples_per_case`` (default: the pilot's K). A 1-D pilot cannot separate
    σ² from ω², so Var(d) is used as measured. Cases missing in A or B are left out;
    fewer than 2 shared cases leaves the variance undefined.
    """
    xa = np.asarray(a_scores, dtype=float)
    xb = np.asarray(b_scores, dtype=float)
    if xa.shape[0] != xb.shape[0] or xa.ndim != xb.ndim or xa.ndim not in (1, 2):
        raise ValueError("pilot scores must be aligned 1-D or 2-D arrays with the same cases")
    kw = dict(n=n, delta=delta, alpha=alpha, power=power, n_comparisons=n_comparisons)
    if xa.ndim == 1:
        keep = ~(np.isnan(xa) | np.isnan(xb))
        d = xa[keep] - xb[keep]
        note = "pilot has one sample per case: within-case variance not separable"
        if samples_per_case not in (None, 1):
            note += f"; K = {samples_per_case} planned, Var(d) used as measured at K = 1"
        if d.size < 2:
            return power_analysis(None, note="pilot has fewer than 2 shared cases", **kw)
        var_d = 0.0 if is_constant(d) else float(np.var(d, ddof=1))
        return power_analysis(var_d, samples_per_case=1, note=note, **kw)

    with np.errstate(all="ignore"):
        ka, kb = np.sum(~np.isnan(xa), axis=1), np.sum(~np.isnan(xb), axis=1)
        keep = (ka > 0) & (kb > 0)
        if keep.sum() < 2:
            return power_analysis(None, note="pilot has fewer than 2 shared cases", **kw)
        ma = np.nanmean(xa[keep], axis=1)
        mb = np.nanmean(xb[keep], axis=1)
    d = ma - mb
    var_means = 0.0 if is_constant(d) else float(np.var(d, ddof=1))
    wa, k_a = _within(xa[keep], ka[keep])
    wb, k_b = _within(xb[keep], kb[keep])
    omega2 = max(0.0, var_means - wa / k_a - wb / k_b)
    k = round(min(k_a, k_b)) if samples_per_case is None else samples_per_case
    var_diff = omega2 + (wa + wb) / k
    return power_analysis(var_diff, samples_per_case=k, **kw)


def _within(x: np.ndarray, k: np.ndarray) -> tuple[float, float]:
    """Mean within-case variance (cases with ≥ 2 samples) and mean K."""
    multi = k >= 2
    if not multi.any():
        return 0.0, float(k.mean())
    return float(np.mean(np.nanvar(x[multi], axis=1, ddof=1))), float(k.mean())


def _check_levels(alpha: float, power: float, n_comparisons: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if n_comparisons < 1:
        raise ValueError(f"n_comparisons must be ≥ 1, got {n_comparisons}")


# ---------------------------------------------------------------------------------------
# Power of the test a comparison actually runs.

T_TESTS = ("paired t", "Wilcoxon signed-rank", "paired bootstrap", "paired permutation")
MAX_UNITS = 10_000_000


def t_power(
    delta: float, sd_unit: float, n_units: int, *, alpha: float = 0.05, n_comparisons: int = 1
) -> float:
    """Power of the two-sided one-sample t test of n_units i.i.d. units with SD ``sd_unit``
    (paired t: the differences; clustered t: the cluster means): P(|T| > t_{1−α/(2m)}) with
    T ~ noncentral t(df = n_units − 1, nc = δ·√n_units / sd_unit). Same as statsmodels'
    ``TTestPower().power(δ/sd, n_units, α/m)``."""
    _check_levels(alpha, 0.5, n_comparisons)
    if n_units < 2:
        raise ValueError(f"the t test needs at least 2 units, got {n_units}")
    nc = abs(delta) * math.sqrt(n_units) / sd_unit
    return _nct_power(nc, n_units - 1, alpha / n_comparisons)


def _nct_power(nc: float, df: int, level: float) -> float:
    crit = float(t_ppf(1 - level / 2, df))
    upper, lower = float(nct_sf(crit, df, nc)), float(nct_cdf(-crit, df, nc))
    # scipy gives NaN for a far-off tail (large nc): that tail is 0 (or 1 above crit)
    upper = (1.0 if nc > crit else 0.0) if math.isnan(upper) else upper
    return upper + (0.0 if math.isnan(lower) else lower)


@functools.lru_cache(maxsize=1024)
def _nc_for_power(df: int, level: float, power: float) -> float:
    """The noncentrality at which the t test on ``df`` df reaches ``power`` (every pair
    of a comparison with the same n shares it, hence the cache)."""
    high = 4.0
    while _nct_power(high, df, level) < power:
        high *= 2
    return float(brentq(lambda nc: _nct_power(nc, df, level) - power, 0.0, high, xtol=1e-10))


def t_min_detectable(
    sd_unit: float,
    n_units: int,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> float:
    """The δ at which :func:`t_power` reaches ``power``: nc*·sd/√n, nc* the noncentrality
    that gives ``power`` on n − 1 df."""
    _check_levels(alpha, power, n_comparisons)
    if n_units < 2:
        raise ValueError(f"the t test needs at least 2 units, got {n_units}")
    nc = _nc_for_power(n_units - 1, alpha / n_comparisons, power)
    return nc * sd_unit / math.sqrt(n_units)


def t_units_needed(
    sd_unit: float,
    delta: float,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> int | None:
    """The fewest units (≥ 2) at which :func:`t_power` reaches ``power``; None beyond
    :data:`MAX_UNITS`."""
    _check_levels(alpha, power, n_comparisons)

    def enough(n: int) -> bool:
        return t_power(delta, sd_unit, n, alpha=alpha, n_comparisons=n_comparisons) >= power

    return _smallest(enough)


def mcnemar_power(
    discordant: float, delta: float, n: int, *, alpha: float = 0.05, n_comparisons: int = 1
) -> float:
    """Exact power of the two-sided exact McNemar test (statsmodels ``mcnemar(exact=True)``:
    p = min(1, 2·Binom(min(b, c); b + c, ½))) on n cases, when a share ``discordant`` = ψ of
    the cases differ and A − B = δ = p₁₀ − p₀₁. Sums over the number of discordant cases
    D ~ Bin(n, ψ) the chance that b ~ Bin(D, (ψ + δ)/(2ψ)) falls in the rejection region
    {min(b, D − b) ≤ k_D}, k_D the largest k with 2·Binom(k; D, ½) ≤ α/m."""
    _check_levels(alpha, 0.5, n_comparisons)
    if not 0 < discordant <= 1:
        raise ValueError(f"the discordant share must be in (0, 1], got {discordant}")
    if abs(delta) > discordant:
        raise ValueError(f"|δ| = {abs(delta):g} cannot exceed the discordant share {discordant:g}")
    return _mcnemar_curve(discordant, n, alpha / n_comparisons)(delta)


def _mcnemar_curve(discordant: float, n: int, level: float) -> Callable[[float], float]:
    """δ ↦ exact McNemar power for fixed ψ and n (the D distribution computed once). D is
    summed over its mean ± 12 SD, beyond which Bin(n, ψ) has no mass to speak of; the
    upper tail P(b ≥ D − k) is Binom(k; D, 1 − π)."""
    spread = 12 * math.sqrt(n * discordant * (1 - discordant)) + 12
    low, high = math.floor(n * discordant - spread), math.ceil(n * discordant + spread)
    d = np.arange(max(0, low), min(n, high) + 1)
    k = _mcnemar_cutoffs(level, 1 << int(d[-1]).bit_length())[d]
    d, k = d[k >= 0], k[k >= 0]
    weight = binom_pmf(d, n, discordant)

    def power(delta: float) -> float:
        pi = (discordant + abs(delta)) / (2 * discordant)
        reject = special.bdtr(k, d, pi) + special.bdtr(k, d, 1 - pi)
        return float(np.sum(weight * reject))

    return power


@functools.lru_cache(maxsize=64)
def _mcnemar_cutoffs(level: float, size: int) -> np.ndarray:
    """k_D for D = 0 … size − 1: the largest k with 2·Binom(k; D, ½) ≤ level (−1: none)."""
    d = np.arange(size)
    k = binom_ppf(level / 2, d, 0.5)
    k = np.where(binom_cdf(k, d, 0.5) <= level / 2, k, k - 1)
    k.flags.writeable = False
    return k


def mcnemar_min_detectable(
    discordant: float,
    n: int,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> float | None:
    """The δ at which :func:`mcnemar_power` reaches ``power`` with the discordant share
    held fixed; None when even δ = ψ (every discordant case favouring one side) falls short."""
    _check_levels(alpha, power, n_comparisons)

    curve = _mcnemar_curve(discordant, n, alpha / n_comparisons)
    if curve(discordant) < power:
        return None
    return float(brentq(lambda d: curve(d) - power, 0.0, discordant, xtol=1e-9))


def mcnemar_cases_needed(
    discordant: float,
    delta: float,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> int | None:
    """Cases at which :func:`mcnemar_power` reaches ``power`` (found by bisection: the exact
    power is slightly saw-toothed in n); None beyond :data:`MAX_UNITS`."""
    _check_levels(alpha, power, n_comparisons)

    def enough(n: int) -> bool:
        kw = dict(alpha=alpha, n_comparisons=n_comparisons)
        return mcnemar_power(discordant, delta, n, **kw) >= power

    return _smallest(enough)


def _smallest(enough) -> int | None:
    """Smallest n ≥ 2 with ``enough(n)``, by doubling then bisection."""
    high = 2
    while not enough(high):
        if high >= MAX_UNITS:
            return None
        high *= 2
    if high == 2:
        return 2
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def power_for_test(
    test: str,
    *,
    n: int,
    sd_diff: float | None,
    se_diff: float | None = None,
    n_clusters: int | None = None,
    n_discordant: int | None = None,
    delta: float | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
) -> PowerAnalysis:
    """Minimum detectable difference at this comparison's size and the cases needed for
    ``delta``, for the test it ran (``test`` as named in ``PairedComparison.test``):

    - exact McNemar: :func:`mcnemar_power` with ψ = n_discordant / n as observed;
    - clustered paired t: a t on the C cluster means, SD = SE_cl·√C, C − 1 df; cases
      needed = clusters needed × the average cluster size n / C;
    - paired t: the noncentral t on n − 1 df with SD = sd(d);
    - Wilcoxon, bootstrap, permutation: the paired t's power, as an approximation (the
      note says so).
    """
    var_diff = None if sd_diff is None else sd_diff**2
    base = power_analysis(var_diff, n=n, alpha=alpha, power=power, n_comparisons=n_comparisons)
    base = replace(base, min_detectable_difference=None, delta=delta, test=test)
    if var_diff is None or var_diff == 0 or n < 2:
        return base
    kw = dict(alpha=alpha, power=power, n_comparisons=n_comparisons)
    note = ""
    clusters_needed = None
    if test == "exact McNemar":
        if not n_discordant:
            return replace(base, note="no discordant case: McNemar's power undefined")
        share = n_discordant / n
        mdd = mcnemar_min_detectable(share, n, **kw)
        needed = None
        if delta is not None:
            if abs(delta) > share:
                note = f"δ = {delta:g} exceeds the discordant share {share:.3g}: unreachable"
            else:
                needed = mcnemar_cases_needed(share, delta, **kw)
        if mdd is None:
            note = "; ".join(
                x for x in (note, f"{n} cases cannot reach {power:.0%} power with McNemar") if x
            )
        how = f"exact McNemar power, discordant share {share:.3g}"
    elif test == "clustered paired t":
        if se_diff is None or not n_clusters or n_clusters < 2 or se_diff == 0:
            return replace(base, note="clustered standard error undefined: power undefined")
        sd_cluster = se_diff * math.sqrt(n_clusters)
        mdd = t_min_detectable(sd_cluster, n_clusters, **kw)
        needed = None
        if delta is not None:
            clusters_needed = t_units_needed(sd_cluster, delta, **kw)
            if clusters_needed is not None:
                needed = math.ceil(clusters_needed * n / n_clusters)
        how = f"clustered paired t power on {n_clusters - 1} df"
    else:
        mdd = t_min_detectable(sd_diff, n, **kw)
        needed = None if delta is None else t_units_needed(sd_diff, delta, **kw)
        how = f"paired t power on {n - 1} df"
        if test != "paired t":
            how += f" (approximates the {test})"
    return replace(
        base,
        min_detectable_difference=mdd,
        cases_needed=needed,
        n_clusters=n_clusters if test == "clustered paired t" else None,
        clusters_needed=clusters_needed,
        note="; ".join(x for x in (how, note) if x),
    )


def planned_power(
    test: str,
    spread: float | None,
    *,
    n: int,
    delta: float | None = None,
    n_clusters: int | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    n_comparisons: int = 1,
    samples_per_case: int = 1,
) -> PowerAnalysis:
    """Before a sweep: the minimum detectable difference at ``n`` cases and the cases
    needed for ``delta``, for the test the comparison will run, from a planning
    ``spread`` (a pilot's or an assumption's; stored as ``var_diff``):

    - exact McNemar: spread = ψ, the share of discordant cases (:func:`mcnemar_power`);
    - clustered paired t: spread = the variance of one group's mean difference at the
      suite's cases per group n / C; a t on C − 1 df (:func:`t_power`); cases needed =
      clusters needed × n / C;
    - otherwise (paired t): spread = Var(d), the noncentral t on n − 1 df.
    """
    base = power_analysis(
        spread,
        n=n,
        alpha=alpha,
        power=power,
        n_comparisons=n_comparisons,
        samples_per_case=samples_per_case,
    )
    base = replace(base, min_detectable_difference=None, delta=delta, test=test)
    if spread is None or spread == 0 or n < 2:
        return base
    kw = dict(alpha=alpha, power=power, n_comparisons=n_comparisons)
    note, mdd, needed, clusters_needed = "", None, None, None
    if test == "exact McNemar":
        if spread > 1:
            raise ValueError(f"the discordant share must be in (0, 1], got {spread}")
        mdd = mcnemar_min_detectable(spread, n, **kw)
        if mdd is None:
            note = f"{n} cases cannot reach {power:.0%} power with McNemar"
        if delta is not None:
            if abs(delta) > spread:
                note = "; ".join(
                    x for x in (note, f"δ = {delta:g} exceeds the discordant share") if x
                )
            else:
                needed = mcnemar_cases_needed(spread, delta, **kw)
    elif test == "clustered paired t":
        if n_clusters is None or n_clusters < 2:
            raise ValueError("the clustered t needs at least 2 clusters")
        sd = math.sqrt(spread)
        mdd = t_min_detectable(sd, n_clusters, **kw)
        if delta is not None:
            clusters_needed = t_units_needed(sd, delta, **kw)
            if clusters_needed is not None:
                needed = math.ceil(clusters_needed * n / n_clusters)
    else:
        sd = math.sqrt(spread)
        mdd = t_min_detectable(sd, n, **kw)
        needed = None if delta is None else t_units_needed(sd, delta, **kw)
    return replace(
        base,
        min_detectable_difference=mdd,
        cases_needed=needed,
        n_clusters=n_clusters if test == "clustered paired t" else None,
        clusters_needed=clusters_needed,
        note=note,
    )
