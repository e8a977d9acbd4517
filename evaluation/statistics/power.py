"""Power and sample size for paired comparisons.

Source: Miller (2024), arXiv 2411.00640, "Power analysis": for a paired comparison with
K_A, K_B samples per case,

    n = (z_{1−α/2} + z_{1−β})² · (ω² + σ_A²/K_A + σ_B²/K_B) / δ²,
    ω² = Var(x_A) + Var(x_B) − 2·Cov(x_A, x_B),

σ² the within-case variance across samples; with K = 1 the bracket is Var(d). Solved for
δ at a given n it is the minimum detectable difference. With m comparisons α is replaced
by α/m (Bonferroni), which is conservative next to Holm or Benjamini–Hochberg.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from evaluation.statistics._cases import is_constant


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


def z_sum(alpha: float = 0.05, power: float = 0.80, n_comparisons: int = 1) -> float:
    """z_{1−α/(2m)} + z_{power}: 1.96 + 0.84 = 2.80 for α = 0.05, 80% power, m = 1."""
    _check_levels(alpha, power, n_comparisons)
    return float(stats.norm.ppf(1 - alpha / (2 * n_comparisons)) + stats.norm.ppf(power))


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
    z = stats.norm.ppf(1 - alpha / (2 * n_comparisons))
    shift = abs(delta) / se
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


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
