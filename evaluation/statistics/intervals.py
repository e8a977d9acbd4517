"""Means with error bars: CLT, clustered and bootstrap standard errors and intervals.

Source: E. Miller, "Adding Error Bars to Evals", arXiv 2411.00640 (2024): the CLT
standard error of a mean of per-case scores, the clustered standard error for cases that
share a group (its appendix), and averaging the K samples of a case before the CLT.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import special

from evaluation.statistics._cases import NOT_RUN, UNSCORABLE, CaseTable, case_table, is_constant


@dataclass(frozen=True)
class MeanEstimate:
    """A mean with its standard error and interval; ``None`` means undefined (see note)."""

    n: int
    mean: float | None
    se: float | None
    ci: tuple[float, float] | None
    confidence: float
    method: str
    n_clusters: int | None = None
    config: str = ""
    metric: str = ""
    n_excluded: int = 0
    samples_per_case: float | None = None
    within_var: float | None = None
    note: str = ""


def mean_interval(
    values: Sequence[float] | np.ndarray,
    groups: Sequence[object] | np.ndarray | None = None,
    *,
    confidence: float = 0.95,
    proportion: bool | None = None,
    bounds: tuple[float, float] | None = None,
) -> MeanEstimate:
    """Mean of per-case scores with its CLT or clustered standard error.

    Unclustered (Miller 2024, CLT section): SE = sqrt(Σ(s_i − s̄)² / (n − 1) / n); for 0/1
    scores this is sqrt(p(1 − p)/(n − 1)), the unbiased form of sqrt(p(1 − p)/n).
    Clustered (Miller 2024, clustered standard errors and appendix):
    SE_cl = (1/n)·sqrt(Σ_c (Σ_{i∈c} (s_i − s̄))²)·sqrt(C/(C − 1)), the C/(C − 1) factor as
    in Inspect AI; a case with no group is its own cluster. All-singleton clusters give
    the unclustered SE exactly and are reported as "CLT".
    Interval: s̄ ± t_{df}·SE with df = n − 1 (or C − 1); for a proportion (0/1 scores;
    ``proportion=None`` detects them, unless ``bounds`` declares another scale than
    [0, 1]) the Wilson score interval, which stays inside
    [0, 1]: with z (as ``statsmodels`` ``proportion_confint(method="wilson")``), or when
    clustered at the effective n = min(n, p̂(1 − p̂)/SE_cl²) with t_{C − 1} in place of z
    (the design effect floored at 1: clustering never makes an interval narrower).
    A case whose group is None (or NaN) is its own cluster.
    ``bounds`` (lo, hi): the scale of a bounded score that is not 0/1 (recall, ROUGE, a
    mean of K samples' pass/fail, 1–5 stars): the interval is the t interval on the
    logit scale, back-transformed, so it stays strictly inside the scale, unclipped
    (:func:`_logit_interval`); (lo, inf), a quantity that is never below lo (words,
    seconds, tokens per second): the t interval on the log scale of the mean − lo,
    back-transformed, so it stays above lo (:func:`_log_interval`). A value outside the
    bounds keeps the plain t interval and the note says so.

    NaN values are left out. n = 0: mean undefined; n = 1: SE undefined (note says so).
    One cluster: the clustered SE is undefined; the note says so and the unclustered SE is
    shown instead. Groups whose residual sums cancel exactly (each group's mean equal to
    the overall one: two groups, the same mean) give SE_cl = 0 though the values vary: a
    point interval, and a paired t of 0/0 or x/0. The unclustered SE is used there and the
    note says so, as the Wilson interval never goes below the unclustered one (a design
    effect below 1 from few groups is noise, not a precise mean). Zero variance gives
    SE = 0 and a note that the interval is degenerate.
    """
    x = np.asarray(values, dtype=float)
    g = None if groups is None else _own_cluster_when_none(np.asarray(groups, dtype=object))
    notes: list[str] = []
    scored = ~np.isnan(x)
    if not scored.all():
        notes.append(f"{int((~scored).sum())} NaN score(s) left out")
        x = x[scored]
        g = None if g is None else g[scored]
    n = int(x.size)
    if n == 0:
        notes.append("no scored cases: mean undefined")
        return MeanEstimate(0, None, None, None, confidence, "none", note="; ".join(notes))
    mean = float(np.mean(x))
    if n < 2:
        notes.append("n = 1: standard error and interval undefined (need n ≥ 2)")
        return MeanEstimate(1, mean, None, None, confidence, "none", note="; ".join(notes))

    n_clusters = None
    if g is not None:
        g = _cluster_codes(g)
        n_clusters = int(g.max()) + 1
        if n_clusters == 1:
            notes.append(
                "all cases share one group: clustered standard error undefined; "
                "showing the unclustered one (treats cases as independent)"
            )
            g = None
        elif n_clusters == n:  # every case its own group: identical to the CLT SE
            g = None
    # 0/1 values of a metric on another scale (1-word outputs, 1 s latencies) are no share
    on_share = bounds is None or tuple(bounds) == (0.0, 1.0)
    binary = proportion or (proportion is None and on_share and bool(np.isin(x, (0, 1)).all()))
    if is_constant(x):
        se, df = 0.0, n - 1
        method = "CLT" if g is None else f"clustered ({n_clusters} groups)"
        notes.append(
            f"zero variance: every value is {mean:.4g}; "
            + ("Wilson interval at n" if binary else "the interval is degenerate")
        )
    elif g is None:
        se, df, method = float(np.std(x, ddof=1) / np.sqrt(n)), n - 1, "CLT"
    else:
        sums = pd.Series(x - mean).groupby(g).sum().to_numpy()
        c = sums.size
        se = float(np.sqrt(np.sum(sums**2)) / n * np.sqrt(c / (c - 1)))
        df, method = c - 1, f"clustered ({c} groups)"
        plain = float(np.std(x, ddof=1) / np.sqrt(n))
        if not binary and se <= 1e-9 * plain:  # a Wilson interval is never narrowed either
            notes.append(
                f"the {c} groups' residuals cancel (their means are equal): clustered "
                "standard error 0 though the values vary; the unclustered one is used"
            )
            se = plain
    q = float(special.stdtrit(df, 0.5 + confidence / 2))
    ci = (mean - q * se, mean + q * se)
    if binary:
        ci, method = _wilson(mean, n, se, df if g is not None else None, confidence, method)
    elif bounds is not None and se > 0:
        lo, hi = bounds
        if lo <= float(x.min()) and float(x.max()) <= hi and math.isinf(hi):
            ci, method = _log_interval(mean, se, df, lo, confidence), f"log {method}"
        elif lo <= float(x.min()) and float(x.max()) <= hi:
            ci, method = _logit_interval(mean, se, df, bounds, confidence), f"logit {method}"
        else:
            notes.append(f"values outside the declared bounds [{lo:g}, {hi:g}]: t interval")
    return MeanEstimate(
        n=n,
        mean=mean,
        se=se,
        ci=ci,
        confidence=confidence,
        method=method,
        n_clusters=n_clusters,
        note="; ".join(notes),
    )


def _cluster_codes(g: np.ndarray) -> np.ndarray:
    """Each case's cluster as a number, the clusters in their labels' sorted order (as
    pandas groups them; grouping by the labels themselves turned them into an arrow
    string array on every call: most of a comparison's time outside its tests)."""
    try:
        return np.unique(g, return_inverse=True)[1].reshape(-1)
    except TypeError:  # labels of several types, which do not sort together
        return pd.factorize(g)[0]


def _own_cluster_when_none(g: np.ndarray) -> np.ndarray:
    """Groups with each missing (None/NaN) label replaced by a label of its own."""
    missing = pd.isna(g)
    if missing.any():
        g = g.copy()
        g[missing] = [f"\x00case:{i}" for i in np.flatnonzero(missing)]
    return g


def _wilson(
    p: float, n: int, se: float, df: int | None, confidence: float, method: str
) -> tuple[tuple[float, float], str]:
    """Wilson score interval for a proportion p̂ of n cases; clustered (``df`` = C − 1):
    at the effective n = n / deff with the t_{C − 1} quantile, where the design effect
    deff = SE_cl² / (p̂(1 − p̂)/n) is floored at 1 (Kish 1965, "Survey Sampling" §8.2: an
    estimated deff below 1 from few clusters is noise, not information; effective n never
    exceeds n)."""
    if df is None:
        q, n_eff = float(special.ndtri(0.5 + confidence / 2)), float(n)
        name = "Wilson"
    else:
        q = float(special.stdtrit(df, 0.5 + confidence / 2))
        n_eff = min(float(n), p * (1 - p) / se**2) if se > 0 else float(n)
        name = f"Wilson, {method}, effective n {n_eff:.1f}"
    q2 = q * q
    center = (p + q2 / (2 * n_eff)) / (1 + q2 / n_eff)
    half = q / (1 + q2 / n_eff) * np.sqrt(p * (1 - p) / n_eff + q2 / (4 * n_eff**2))
    # At p̂ = 0 or 1 the bound is p̂ exactly; rounding must not put it on the wrong side.
    low, high = min(p, float(center - half)), max(p, float(center + half))
    return (max(0.0, low), min(1.0, high)), name


def _logit_interval(
    mean: float, se: float, df: int, bounds: tuple[float, float], confidence: float
) -> tuple[float, float]:
    """Interval for a mean on the bounded scale [lo, hi] with lo < mean < hi: on
    u = (s̄ − lo)/(hi − lo), θ = logit(u) ± t_{df}·SE_θ with the delta-method
    SE_θ = SE_u / (u(1 − u)) (Casella & Berger, "Statistical Inference", 2nd ed., §5.5.4;
    the logit interval for a proportion, Agresti, "Categorical Data Analysis", 3rd ed.,
    §16.1), mapped back: inside (lo, hi) by construction, asymmetric near a bound, the
    t interval at mid-scale. Coverage by simulation: benchmarks/perf/stats_calibration.py."""
    lo, hi = bounds
    width = hi - lo
    u = (mean - lo) / width
    se_theta = se / width / (u * (1 - u))
    q = float(special.stdtrit(df, 0.5 + confidence / 2))
    theta = float(special.logit(u))
    low, high = special.expit(theta - q * se_theta), special.expit(theta + q * se_theta)
    return lo + width * float(low), lo + width * float(high)


def _log_interval(
    mean: float, se: float, df: int, lo: float, confidence: float
) -> tuple[float, float]:
    """Interval for a mean of values that are never below ``lo`` (mean > lo): θ =
    log(s̄ − lo) ± t_{df}·SE_θ with the delta-method SE_θ = SE / (s̄ − lo) (Casella &
    Berger, §5.5.4), mapped back to lo + exp(θ): above lo by construction, longer
    upwards (as a skewed mean's sampling distribution is), the t interval when the SE is
    small beside s̄ − lo. It is the mean that is transformed, so zeros among the values
    are fine. Differences of such means are not bounded below: paired intervals stay t.
    Coverage by simulation: benchmarks/perf/stats_calibration.py (check 5)."""
    q = float(special.stdtrit(df, 0.5 + confidence / 2))
    theta, se_theta = math.log(mean - lo), se / (mean - lo)
    return lo + math.exp(theta - q * se_theta), lo + math.exp(theta + q * se_theta)


def summarize_config(
    table: CaseTable,
    config: str,
    *,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> MeanEstimate:
    """Mean, SE and interval of one config on one metric, K samples averaged per case first
    (Miller 2024, resampling: Var(s̄) = (Var(x) + E[σ_i²]/K)/n). Cases with no row or no
    scored sample for this config are excluded and counted in the note. ``bounds``: the
    metric's scale, for an interval that stays on it (see :func:`mean_interval`)."""
    if config not in table.means.columns:
        return MeanEstimate(
            0,
            None,
            None,
            None,
            confidence,
            "none",
            config=config,
            metric=table.metric,
            note=f"no scores for config {config!r} on metric {table.metric!r}",
        )
    values = table.means[config]
    used = values.notna()
    reasons = pd.Series(table.exclusion_reasons(config, values.index[~used]), dtype=object)
    groups = None if table.groups is None else table.groups[used].to_numpy()
    est = mean_interval(values[used].to_numpy(), groups, confidence=confidence, bounds=bounds)
    notes = [est.note] if est.note else []
    if not reasons.empty:
        counts = reasons.value_counts()
        notes.append(
            f"{len(reasons)} case(s) excluded: "
            + ", ".join(f"{k} {_short(r, config)}" for r, k in counts.items())
        )
    k = table.scored.loc[used, config]
    within = table.within_var.loc[used, config].dropna()
    return replace(
        est,
        config=config,
        metric=table.metric,
        n_excluded=len(reasons),
        samples_per_case=float(k.mean()) if used.any() else None,
        within_var=float(within.mean()) if not within.empty else None,
        note="; ".join(notes),
    )


def _short(reason: str, config: str) -> str:
    return {
        NOT_RUN.format(config=config): "not run",
        UNSCORABLE.format(config=config): "unscorable (NaN)",
    }.get(reason, reason)


def summarize(
    scores: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    bounds: Mapping[str, tuple[float, float] | None] | None = None,
) -> list[MeanEstimate]:
    """One :class:`MeanEstimate` per (metric, config) from long score rows; ``bounds``:
    each bounded metric's scale (see :func:`mean_interval`)."""
    names = sorted(scores["metric"].dropna().unique()) if metrics is None else list(metrics)
    out: list[MeanEstimate] = []
    for metric in names:
        table = case_table(scores, metric)
        scale = (bounds or {}).get(metric)
        out.extend(
            summarize_config(table, c, confidence=confidence, bounds=scale) for c in table.configs
        )
    return out


def corpus_interval(
    statistic: Callable[[np.ndarray], float],
    n_cases: int,
    *,
    groups: Sequence[object] | np.ndarray | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> MeanEstimate:
    """Bootstrap interval for a corpus-level metric (BLEU, chrF over the whole corpus).

    ``statistic(indices)`` computes the metric on the cases at those indices (repeats
    allowed). Cases are resampled with replacement (whole groups when ``groups`` is given,
    the bootstrap analogue of clustering) with ``scipy.stats.bootstrap``, seeded; groups
    are taken in sorted order, so the same cases in another row order give the same
    interval (without groups the caller's order is used: pass cases in a fixed order). BCa is
    tried first; when it warns or gives a non-finite bound (very discrete data) the
    percentile interval is used and the note says so. SE is the bootstrap SD.
    n < 2 (or one group only, then cases are resampled): see the note.
    """
    if n_cases < 1:
        return MeanEstimate(0, None, None, None, confidence, "none", note="no cases")
    point = float(statistic(np.arange(n_cases)))
    if n_cases < 2:
        return MeanEstimate(
            1,
            point,
            None,
            None,
            confidence,
            "none",
            note="n = 1: bootstrap interval undefined (need n ≥ 2)",
        )
    notes: list[str] = []
    units = [np.array([i]) for i in range(n_cases)]
    n_clusters = None
    if groups is not None:
        g = np.asarray(groups, dtype=object)
        labels = sorted(pd.unique(g), key=str)  # the same resamples whatever the row order
        n_clusters = len(labels)
        if n_clusters == 1:
            notes.append("one group only: clustered bootstrap undefined; resampling cases")
        else:
            units = [np.flatnonzero(g == label) for label in labels]

    def on_units(idx: np.ndarray) -> float:
        return float(statistic(np.concatenate([units[i] for i in idx])))

    from scipy import stats  # seconds to import: only a corpus metric's interval needs it

    data = (np.arange(len(units)),)
    method = "BCa"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = stats.bootstrap(
            data,
            on_units,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    low, high = res.confidence_interval
    if caught or not (np.isfinite(low) and np.isfinite(high)):
        method = "percentile"
        notes.append("BCa unusable on these data; percentile interval")
        res = stats.bootstrap(
            data,
            on_units,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        low, high = res.confidence_interval
    se = float(res.standard_error)
    if se == 0:
        notes.append("every resample gave the same value; the interval is degenerate")
    return MeanEstimate(
        n=n_cases,
        mean=point,
        se=se,
        ci=(float(low), float(high)),
        confidence=confidence,
        method=f"bootstrap ({method}, {n_resamples} resamples, seed {seed})",
        n_clusters=n_clusters,
        note="; ".join(notes),
    )
