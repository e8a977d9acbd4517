"""Power before a sweep runs: how many cases detect a difference δ, and what the suite's
cases can detect, for the comparisons a sweep spec implies.

Variances come from a pilot experiment's per-case scores when there is one (each config
versus the pilot's best config on the metric: the comparisons that decide a winner), else
from :data:`DEFAULT_ASSUMPTION`. Formulas: Miller (2024), arXiv 2411.00640, "Power
analysis", via :mod:`evaluation.statistics.power`; m comparisons use α/m (Bonferroni,
conservative next to Holm or Benjamini–Hochberg).
"""

from __future__ import annotations

import statistics as pystats
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.metrics import get_metric
from evaluation.scoring import TIMING_METRICS
from evaluation.statistics import (
    PowerAnalysis,
    paired_diff_variance,
    power_analysis,
    power_from_pilot,
)

DEFAULT_P = 0.5
DEFAULT_CORRELATION = 0.5
DEFAULT_ASSUMPTION = (
    f"ASSUMED, no pilot: a binary metric at p = {DEFAULT_P} for every config (per-case "
    f"variance p(1 − p) = {DEFAULT_P * (1 - DEFAULT_P):g}), correlation {DEFAULT_CORRELATION} "
    "between two configs' case scores, no within-case sampling variance (conservative "
    "when samples_per_case > 1). Run a small pilot and pass --pilot for real variances."
)


@dataclass(frozen=True)
class MetricPower:
    """One metric: the typical (median Var(d)) and worst (largest Var(d)) pair."""

    metric: str
    pairs: int
    typical: PowerAnalysis
    worst: PowerAnalysis
    note: str = ""


@dataclass(frozen=True)
class PowerPlan:
    sweep: str
    n_cases: int
    samples_per_case: int
    n_configs: int
    n_comparisons: int
    mode: str
    delta: float
    alpha: float
    power: float
    source: str
    metrics: tuple[MetricPower, ...]
    notes: tuple[str, ...] = ()


def comparisons_implied(n_configs: int, *, has_baseline: bool) -> tuple[int, str]:
    """m and its description: N − 1 versus a baseline, N(N − 1)/2 for all pairs."""
    if has_baseline:
        return max(1, n_configs - 1), "each config versus the baseline"
    return max(1, n_configs * (n_configs - 1) // 2), "all pairs"


def plan_power(
    *,
    sweep: str,
    n_cases: int,
    samples_per_case: int,
    n_configs: int,
    has_baseline: bool,
    delta: float,
    metrics: tuple[str, ...],
    pilot: pd.DataFrame | None = None,
    pilot_name: str = "",
    alpha: float = 0.05,
    power: float = 0.80,
    grouped: bool = False,
) -> PowerPlan:
    """The plan for a sweep of ``n_configs`` configs on ``n_cases`` cases. ``pilot``:
    long score rows (config, case_id, sample_index, metric, value) of a pilot run."""
    m, mode = comparisons_implied(n_configs, has_baseline=has_baseline)
    kw = dict(
        n=n_cases,
        delta=delta,
        alpha=alpha,
        power=power,
        n_comparisons=m,
        samples_per_case=samples_per_case,
    )
    notes = []
    if grouped:
        notes.append(
            "the suite's cases share groups: these formulas treat cases as independent, "
            "so clustered comparisons need more cases than shown"
        )
    usable = [] if pilot is None else [x for x in metrics if (pilot["metric"] == x).any()]
    usable = [x for x in usable if x not in TIMING_METRICS]
    if pilot is not None:
        unused = [x for x in metrics if x not in usable]
        if unused:
            notes.append(f"pilot {pilot_name} has no usable scores on {', '.join(unused)}")
    if not usable:
        var = paired_diff_variance(
            DEFAULT_P * (1 - DEFAULT_P), DEFAULT_P * (1 - DEFAULT_P), DEFAULT_CORRELATION
        )
        assumed = power_analysis(var, **kw)
        rows = (MetricPower("binary metric (assumed)", 0, assumed, assumed),)
        source = DEFAULT_ASSUMPTION
    else:
        rows = tuple(_from_pilot(pilot, metric, kw) for metric in usable)
        source = (
            f"pilot experiment {pilot_name} ({pilot['config'].nunique()} configs, "
            f"{pilot['case_id'].nunique()} cases): each config versus the pilot's best "
            "config on the metric"
        )
    return PowerPlan(
        sweep, n_cases, samples_per_case, n_configs, m, mode, delta, alpha, power, source,
        rows, tuple(notes),
    )  # fmt: skip


def _from_pilot(pilot: pd.DataFrame, metric: str, kw: dict) -> MetricPower:
    rows = pilot[pilot["metric"] == metric]
    values = pd.to_numeric(rows["value"], errors="coerce")
    wide = rows.assign(value=values).pivot_table(
        index="case_id",
        columns=["config", "sample_index"],
        values="value",
        aggfunc="first",
        dropna=False,
    )
    configs = sorted(set(rows["config"]))  # ties for best go to the first name
    means = {
        c: np.nanmean(wide[c].to_numpy()) if wide[c].notna().any().any() else np.nan
        for c in configs
    }
    scored = [c for c in configs if not np.isnan(means[c])]
    up = get_metric(metric).higher_is_better
    if len(scored) < 2:
        undefined = power_analysis(None, **kw)
        return MetricPower(metric, 0, undefined, undefined, "the pilot has < 2 scored configs")
    best = max(scored, key=lambda c: means[c] if up else -means[c])
    one_sample = wide.columns.get_level_values("sample_index").nunique() == 1
    variances, identical, undefined = [], 0, 0
    for other in (c for c in scored if c != best):
        a, b = wide[best].to_numpy(), wide[other].to_numpy()
        width = max(a.shape[1], b.shape[1])
        a, b = _pad(a, width), _pad(b, width)
        result = power_from_pilot(
            a[:, 0] if one_sample else a,
            b[:, 0] if one_sample else b,
            samples_per_case=kw["samples_per_case"],
            n=kw["n"],
        )
        if result.var_diff is None:
            undefined += 1
        elif result.var_diff == 0:
            identical += 1
        else:
            variances.append(result.var_diff)
    notes = []
    if identical:
        notes.append(f"{identical} pair(s) scored identically on every case left out")
    if undefined:
        notes.append(f"{undefined} pair(s) with < 2 shared cases left out")
    if one_sample and kw["samples_per_case"] > 1:
        notes.append("pilot has 1 sample per case: Var(d) used as measured")
    if not variances:
        none = power_analysis(None, **kw)
        return MetricPower(metric, 0, none, none, "; ".join(notes) or "no usable pair")
    typical = power_analysis(float(pystats.median(variances)), **kw)
    worst = power_analysis(max(variances), **kw)
    return MetricPower(metric, len(variances), typical, worst, "; ".join(notes))


def _mean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    if x.shape[1] == width:
        return x
    return np.hstack([x, np.full((x.shape[0], width - x.shape[1]), np.nan)])


def render_power(plan: PowerPlan) -> str:
    """The plan as terminal text; the variance source (pilot or assumption) comes first."""
    samples = f"{plan.samples_per_case} sample{'s' * (plan.samples_per_case != 1)} per case"
    lines = [
        f"Power for sweep {plan.sweep}: {plan.n_configs} configs, {plan.n_cases} cases, {samples}",
        f"Comparisons: {plan.mode}, m = {plan.n_comparisons}; α = {plan.alpha:g} "
        f"(α/m = {plan.alpha / plan.n_comparisons:.3g}, Bonferroni), power {plan.power:.0%}, "
        f"δ = {plan.delta:g} in each metric's units",
        f"Variances: {plan.source}",
        "",
    ]
    header = ["metric", "pairs", "Var(d) typical", "worst", f"MDD at n = {plan.n_cases}",
              "worst", f"cases for δ = {plan.delta:g}", "worst"]  # fmt: skip
    rows = [
        [
            r.metric,
            str(r.pairs) if r.pairs else "-",
            _num(r.typical.var_diff),
            _num(r.worst.var_diff),
            _num(r.typical.min_detectable_difference),
            _num(r.worst.min_detectable_difference),
            _num(r.typical.cases_needed),
            _num(r.worst.cases_needed),
        ]
        for r in plan.metrics
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    notes = [*plan.notes]
    notes += [f"{r.metric}: {n}" for r in plan.metrics for n in (r.note, r.typical.note) if n]
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in dict.fromkeys(notes)]]
    lines += [
        "",
        "typical: the median Var(d) over the pairs; worst: the largest. MDD: the smallest "
        "difference found with that power at the suite's size.",
    ]
    return "\n".join(lines) + "\n"


def _num(x: float | int | None) -> str:
    if x is None:
        return "undefined"
    return str(x) if isinstance(x, int) else f"{x:.4g}"
