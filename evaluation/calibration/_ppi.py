"""Prediction-powered inference of a mean: PPI++ with power tuning (Angelopoulos, Duchi and
Zrnic, "PPI++: Efficient Prediction-Powered Inference", arXiv 2311.01453).

People rated ``n`` units (their scores ``y``, the judge's ``f_rated`` on the same units);
the judge alone scored ``N`` other units (``f_unrated``). The estimate

    θ̂_λ = λ·mean(f_unrated) + mean(y − λ·f_rated)

is unbiased for the people's mean for every λ, because the rated units are a random draw
of the same population: the judge's bias cancels in the rectifier ``y − λ·f``. λ = 0 is
the people-only mean; λ = 1 is plain PPI; the tuned λ minimises the variance,
λ̂ = Cov(y, f) / ((1 + n/N)·Var(f)), clipped to [0, 1], exactly as ``ppi_py``
computes it (covariance over the rated units with divisor n, variance of f over all
n + N units with divisor n + N − 1), so that a judge unrelated to people costs nothing.

Variance: the sum of the two independent parts, Var(λf)/N + Var(y − λf)/n (divisor n, as
``ppi_py``). Clustered (cases that share a group): the cluster-robust sandwich over the
per-unit influences ψ (λ(f_i − f̄)/N for a judge-only unit, (r_i − r̄)/n for a rated one),
Σ_g (Σ_{i∈g} ψ_i)² · C/(C − 1), C clusters; with every unit its own cluster it is the
unclustered variance exactly (no C/(C − 1) then, as ``mean_interval`` reports CLT).
Interval: θ̂ ± q·SE, q the normal quantile as in ``ppi_py`` (``small_sample=False``),
or by default, as evalflow's other means, divisors n − 1 and Student's t on the rated
units' (or their clusters') degrees of freedom: the normal interval covered 92.6% at 30
ratings in benchmarks/perf/judge_calibration.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PPIEstimate:
    """A mean estimated from people's ratings and a judge's scores."""

    estimate: float | None
    se: float | None
    ci: tuple[float, float] | None
    lam: float | None
    n_rated: int
    n_judge_only: int
    confidence: float
    method: str
    n_clusters: int | None = None
    note: str = ""
    df: int | None = None  # Student's t degrees of freedom; None: normal
    var_judge_only: float | None = None  # of se², what the judge-only units contribute

    def p_value(self, null: float = 0.0) -> float | None:
        """Two-sided p-value of estimate = ``null`` (Student's t on ``df``, else normal).
        None where the standard error is 0 (every unit the same, as two ratings often
        are): no interval, and no test either (it read p 0, "differ", on two cases)."""
        if self.estimate is None or self.se is None or self.se == 0:
            return None
        z = abs(self.estimate - null) / self.se
        from scipy import special  # here: `evalflow show` renders estimates without scipy

        if self.df is None:
            return float(special.erfc(z / math.sqrt(2)))
        return float(2 * special.stdtr(self.df, -z))


def tuned_lambda(y: np.ndarray, f_rated: np.ndarray, f_unrated: np.ndarray) -> float:
    """PPI++'s variance-minimising λ for a mean, clipped to [0, 1] (``ppi_py``'s
    ``_calc_lam_glm`` for d = 1, ``clip=True``). 0 when the judge's scores do not vary."""
    n, big_n = y.size, f_unrated.size
    if n == 0 or big_n == 0:
        return 0.0
    cov = float(np.sum((y - y.mean()) * (f_rated - f_rated.mean())) / n)
    f_all = np.concatenate([f_rated, f_unrated])
    var = float(np.var(f_all, ddof=1)) if f_all.size > 1 else 0.0
    if var <= 0:
        return 0.0
    return float(np.clip(cov / ((1 + n / big_n) * var), 0.0, 1.0))


def ppi_mean(
    y: Sequence[float] | np.ndarray,
    f_rated: Sequence[float] | np.ndarray,
    f_unrated: Sequence[float] | np.ndarray,
    *,
    groups_rated: Sequence[object] | np.ndarray | None = None,
    groups_unrated: Sequence[object] | np.ndarray | None = None,
    confidence: float = 0.95,
    lam: float | None = None,
    small_sample: bool = True,
) -> PPIEstimate:
    """PPI++ estimate of the people's mean with its interval (see the module).
    ``lam=None`` tunes λ; ``lam=0`` gives the people-only mean with the same variance
    formula. Groups (one per unit; None is its own cluster) make the variance
    cluster-robust. ``small_sample=False`` is ``ppi_py``'s interval exactly (divisor n,
    normal quantile); True, the default, is evalflow's as for every mean
    (``mean_interval``): divisor n − 1 and Student's t on df = (rated units, or clusters
    holding a rated unit) − 1, which keeps coverage at 30 ratings
    (benchmarks/perf/judge_calibration.py). Fewer than two rated units, or no judge-only
    unit, leave the combined estimate undefined (the note says why)."""
    yv = np.asarray(y, dtype=float)
    fr = np.asarray(f_rated, dtype=float)
    fu = np.asarray(f_unrated, dtype=float)
    if yv.shape != fr.shape:
        raise ValueError(f"{yv.size} ratings but {fr.size} judge scores of the rated units")
    n, big_n = int(yv.size), int(fu.size)
    if n < 2:
        return PPIEstimate(
            None,
            None,
            None,
            None,
            n,
            big_n,
            confidence,
            "none",
            note=f"{n} rated unit(s): a combined estimate needs at least 2",
        )
    if big_n == 0 and lam != 0:
        return PPIEstimate(
            None,
            None,
            None,
            None,
            n,
            0,
            confidence,
            "none",
            note="the judge scored nothing people did not rate: nothing to combine",
        )
    lam_v = tuned_lambda(yv, fr, fu) if lam is None else float(lam)
    rect = yv - lam_v * fr
    estimate = float(rect.mean() + (lam_v * fu.mean() if big_n else 0.0))
    psi_rated = (rect - rect.mean()) / n
    psi_unrated = lam_v * (fu - fu.mean()) / big_n if big_n else np.zeros(0)
    n_clusters = None
    df: int | None = n - 1 if small_sample else None
    kind = "t" if small_sample else "normal"
    if groups_rated is None and groups_unrated is None:
        var = (
            _var_singletons(psi_rated, psi_unrated, n, big_n)
            if small_sample
            else float(np.sum(psi_rated**2) + np.sum(psi_unrated**2))
        )
        method = f"PPI++ {kind}" if lam != 0 else kind
    else:
        labels = _clusters(groups_rated, n, "r") + _clusters(groups_unrated, big_n, "u")
        sums = pd.Series(np.concatenate([psi_rated, psi_unrated])).groupby(labels).sum()
        c = int(sums.size)
        var = float(np.sum(sums.to_numpy() ** 2))
        if c < n + big_n:  # real clusters: the small-sample factor of mean_interval
            n_clusters = c
            var *= c / (c - 1) if c > 1 else math.nan
            if small_sample:
                df = max(1, len(set(labels[:n])) - 1)
        elif small_sample:
            var = _var_singletons(psi_rated, psi_unrated, n, big_n)
        method = ("PPI++ " if lam != 0 else "") + (
            f"clustered ({c} groups)" if n_clusters else kind
        )
    if not math.isfinite(var):
        return PPIEstimate(
            estimate,
            None,
            None,
            lam_v,
            n,
            big_n,
            confidence,
            method,
            n_clusters,
            "all units share one group: clustered standard error undefined",
        )
    se = math.sqrt(var)
    q = 0.5 + confidence / 2
    from scipy import special  # here: `evalflow show` renders estimates without scipy

    z = float(special.ndtri(q) if df is None else special.stdtrit(df, q))
    return PPIEstimate(
        estimate,
        se,
        (estimate - z * se, estimate + z * se),
        lam_v,
        n,
        big_n,
        confidence,
        method,
        n_clusters,
        df=df,
        var_judge_only=float(np.sum(psi_unrated**2)) * (big_n / (big_n - 1) if big_n > 1 else 1.0),
    )


def _var_singletons(psi_rated: np.ndarray, psi_unrated: np.ndarray, n: int, big_n: int) -> float:
    """The unclustered variance with divisors n − 1 and N − 1."""
    unrated = float(np.sum(psi_unrated**2)) * (big_n / (big_n - 1) if big_n > 1 else 1.0)
    return float(np.sum(psi_rated**2)) * n / (n - 1) + unrated


def _clusters(groups: Sequence[object] | np.ndarray | None, size: int, tag: str) -> list[str]:
    """Cluster labels; a unit without a group is its own cluster."""
    if groups is None:
        return [f"\0{tag}{i}" for i in range(size)]
    out = []
    for i, g in enumerate(groups):
        missing = g is None or (isinstance(g, float) and math.isnan(g))
        out.append(f"\0{tag}{i}" if missing else f"g:{g}")
    if len(out) != size:
        raise ValueError(f"{len(out)} group labels for {size} units")
    return out
