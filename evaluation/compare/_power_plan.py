"""Power before a sweep runs: how many cases (and groups) detect a difference δ, and what
the suite's cases can detect, for the comparisons a sweep spec implies and the test each
comparison will run: the clustered paired t on C − 1 df when the suite's cases share
groups, the exact McNemar test for one 0/1 score per case, the paired t otherwise
(:func:`evaluation.statistics.power.planned_power`).

Spreads come from a pilot experiment's per-case scores when there is one (each config
versus the pilot's best config on the metric: the comparisons that decide a winner), else
from :data:`DEFAULT_ASSUMPTION`. m comparisons use α/m (Bonferroni, conservative next to
Holm or Benjamini–Hochberg).
"""

from __future__ import annotations

import math
import statistics as pystats
import textwrap
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from evaluation.compare._comparison import find_experiment
from evaluation.errors import EvalError
from evaluation.metrics import get_metric
from evaluation.run._scoring import TIMING_METRICS
from evaluation.run._sweep import prepare_sweep
from evaluation.spec import baseline_config
from evaluation.statistics import (
    PowerAnalysis,
    mean_interval,
    paired_diff_variance,
    power_from_pilot,
)
from evaluation.statistics.power import planned_power
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import list_experiments, metrics_of_run, scores_frame

DEFAULT_P = 0.5
DEFAULT_CORRELATION = 0.5
DEFAULT_ICC = 0.1
DEFAULT_ASSUMPTION = (
    f"ASSUMED, no pilot: a binary metric at p = {DEFAULT_P} for every config (per-case "
    f"variance p(1 − p) = {DEFAULT_P * (1 - DEFAULT_P):g}), correlation {DEFAULT_CORRELATION} "
    "between two configs' case scores (Var(d) = discordant share = "
    f"{2 * DEFAULT_P * (1 - DEFAULT_P) * (1 - DEFAULT_CORRELATION):g}), no within-case "
    "sampling variance (conservative when samples_per_case > 1). Run a small pilot and "
    "pass --pilot for real variances."
)
ICC_ASSUMPTION = (
    f"ASSUMED: intra-group correlation {DEFAULT_ICC:g} of the paired differences, so a "
    "group's mean difference has variance Var(d)·(ICC + (1 − ICC)/k), k cases per group"
)
MCNEMAR, PAIRED_T, CLUSTERED_T = "exact McNemar", "paired t", "clustered paired t"


@dataclass(frozen=True)
class MetricPower:
    """One metric: the typical (median spread) and worst (largest spread) pair.
    ``span``: the largest difference its scale allows (hi − lo of its bounds; None:
    unbounded), beyond which a minimum detectable difference means none is found."""

    metric: str
    test: str
    pairs: int
    typical: PowerAnalysis
    worst: PowerAnalysis
    note: str = ""
    span: float | None = None


@dataclass(frozen=True)
class PowerPlan:
    sweep: str
    n_cases: int
    n_clusters: int | None
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


def count_clusters(groups: list[object]) -> int | None:
    """Clusters of a suite as the clustered SE counts them (a case without a group is its
    own); None when no two cases share a group (the comparison is unclustered)."""
    named = [g for g in groups if g is not None]
    c = len(set(named)) + (len(groups) - len(named))
    return None if c in (len(groups), 1) or not groups else c


def plan_for_spec(
    spec_path: str,
    *,
    database_url: str,
    delta: float,
    pilot_name: str = "",
    alpha: float = 0.05,
    power: float = 0.80,
) -> PowerPlan:
    """The plan for a sweep spec, on the metrics its run scores, the run's primary first
    (``metrics_of_run``: a ``rescore --first``'s choice stands); the pilot is
    ``pilot_name``, else the stored experiment named like the spec, else none (the stated
    assumption)."""
    sweep = prepare_sweep(spec_path)
    pilot = None
    with session_scope(make_engine(database_url)) as session:
        metrics = metrics_of_run(session, sweep.spec.name, sweep.metrics)
        binary = [m for m in metrics if get_metric(m).score_type == "binary"]
        if binary and not delta < 1:
            raise EvalError(
                f"--delta {delta:g}: {binary[0]} scores each case 0 or 1, so a difference "
                "between two configs is below 1 (e.g. 0.05 for five points)"
            )
        if not pilot_name and any(e.name == sweep.spec.name for e in list_experiments(session)):
            pilot_name = sweep.spec.name
        if pilot_name:
            pilot = scores_frame(session, find_experiment(session, pilot_name).id)
    return plan_power(
        sweep=sweep.spec.name,
        n_cases=len(sweep.suite.cases),
        samples_per_case=sweep.spec.samples_per_case,
        n_configs=len(sweep.configs),
        has_baseline=baseline_config(sweep.spec, list(sweep.configs)) is not None,
        delta=delta,
        metrics=metrics,
        pilot=pilot,
        pilot_name=pilot_name,
        alpha=alpha,
        power=power,
        n_clusters=count_clusters([c.group for c in sweep.suite.cases]),
    )


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
    n_clusters: int | None = None,
) -> PowerPlan:
    """The plan for a sweep of ``n_configs`` configs on ``n_cases`` cases in ``n_clusters``
    groups (None: ungrouped). ``pilot``: long score rows (config, case_id, sample_index,
    metric, value, and optionally group) of a pilot run."""
    m, mode = comparisons_implied(n_configs, has_baseline=has_baseline)
    plan = _Planner(n_cases, n_clusters, samples_per_case, delta, alpha, power, m)
    notes = []
    usable = [] if pilot is None else [x for x in metrics if (pilot["metric"] == x).any()]
    usable = [x for x in usable if x not in TIMING_METRICS]
    if pilot is not None:
        unused = [x for x in metrics if x not in usable]
        if unused:
            notes.append(f"pilot {pilot_name} has no usable scores on {', '.join(unused)}")
    if not usable:
        var_d = paired_diff_variance(
            DEFAULT_P * (1 - DEFAULT_P), DEFAULT_P * (1 - DEFAULT_P), DEFAULT_CORRELATION
        )
        if n_clusters:
            test, spread = CLUSTERED_T, plan.assumed_cluster_spread(var_d)
            notes.append(ICC_ASSUMPTION)
        elif samples_per_case == 1:
            test, spread = MCNEMAR, var_d  # 0/1 scores: discordant share = Var(d) at δ = 0
        else:
            test, spread = PAIRED_T, var_d
        assumed = plan.analysis(test, spread)
        rows = (MetricPower("binary metric (assumed)", test, 0, assumed, assumed, span=1.0),)
        source = DEFAULT_ASSUMPTION
    else:
        rows = tuple(
            replace(_from_pilot(pilot, metric, plan), span=_span(metric)) for metric in usable
        )
        source = (
            f"pilot experiment {pilot_name} ({pilot['config'].nunique()} configs, "
            f"{pilot['case_id'].nunique()} cases): each config versus the pilot's best "
            "config on the metric"
        )
    return PowerPlan(
        sweep, n_cases, n_clusters, samples_per_case, n_configs, m, mode, delta, alpha,
        power, source, rows, tuple(notes),
    )  # fmt: skip


@dataclass(frozen=True)
class _Planner:
    n_cases: int
    n_clusters: int | None
    samples_per_case: int
    delta: float
    alpha: float
    power: float
    m: int

    @property
    def per_cluster(self) -> float:
        return self.n_cases / self.n_clusters if self.n_clusters else 1.0

    def analysis(self, test: str, spread: float | None) -> PowerAnalysis:
        return planned_power(
            test,
            spread,
            n=self.n_cases,
            delta=self.delta,
            n_clusters=self.n_clusters,
            alpha=self.alpha,
            power=self.power,
            n_comparisons=self.m,
            samples_per_case=self.samples_per_case,
        )

    def assumed_cluster_spread(self, var_d: float) -> float:
        """Var(group mean d) at the suite's cases per group under :data:`DEFAULT_ICC`."""
        return var_d * (DEFAULT_ICC + (1 - DEFAULT_ICC) / self.per_cluster)

    def cluster_spread(self, d: np.ndarray, groups: np.ndarray) -> tuple[float, str]:
        """Var(group mean d) at the suite's cases per group, from a pilot's differences:
        SE_cl²·C is the variance of a group's mean at the pilot's n/C cases per group; it
        splits into between-group τ² and within-group σ²/k (one-way variance components),
        rebuilt as τ² + σ²/k for the suite's k."""
        n = d.size
        c = count_clusters(list(groups))
        if c is None:
            note = "the pilot's cases share no groups: " + ICC_ASSUMPTION
            return self.assumed_cluster_spread(float(np.var(d, ddof=1))), note
        est = mean_interval(d, groups, proportion=False)
        unit = (est.se or 0.0) ** 2 * c
        frame = pd.DataFrame({"d": d, "g": groups})
        within = float(((frame["d"] - frame.groupby("g")["d"].transform("mean")) ** 2).sum())
        sigma2 = within / (n - c)
        tau2 = max(0.0, unit - sigma2 / (n / c))
        return tau2 + sigma2 / self.per_cluster, ""


def _test_for(metric: str, rows: pd.DataFrame, plan: _Planner) -> str:
    """The test ``auto`` will pick for the sweep's comparisons on this metric."""
    if plan.n_clusters:
        return CLUSTERED_T
    values = pd.to_numeric(rows["value"], errors="coerce").dropna()
    binary = get_metric(metric).score_type == "binary" and values.isin((0.0, 1.0)).all()
    return MCNEMAR if binary and plan.samples_per_case == 1 else PAIRED_T


def _from_pilot(pilot: pd.DataFrame, metric: str, plan: _Planner) -> MetricPower:
    rows = pilot[pilot["metric"] == metric]
    test = _test_for(metric, rows, plan)
    values = pd.to_numeric(rows["value"], errors="coerce")
    wide = rows.assign(value=values).pivot_table(
        index="case_id",
        columns=["config", "sample_index"],
        values="value",
        aggfunc="first",
        dropna=False,
    )
    if "group" in rows:
        by_case = rows.drop_duplicates("case_id").set_index("case_id")["group"]
        groups = by_case.reindex(wide.index).astype(object).to_numpy()
        groups = np.array([None if pd.isna(g) else g for g in groups], dtype=object)
    else:
        groups = np.array(list(wide.index), dtype=object)
    configs = sorted(set(rows["config"]))  # ties for best go to the first name
    means = {
        c: np.nanmean(wide[c].to_numpy()) if wide[c].notna().any().any() else np.nan
        for c in configs
    }
    scored = [c for c in configs if not np.isnan(means[c])]
    up = get_metric(metric).higher_is_better
    if len(scored) < 2:
        undefined = plan.analysis(test, None)
        return MetricPower(
            metric, test, 0, undefined, undefined, "the pilot has < 2 scored configs"
        )
    best = max(scored, key=lambda c: means[c] if up else -means[c])
    one_sample = wide.columns.get_level_values("sample_index").nunique() == 1
    spreads, identical, undefined = [], 0, 0
    notes: list[str] = []
    for other in (c for c in scored if c != best):
        a, b = wide[best].to_numpy(), wide[other].to_numpy()
        width = max(a.shape[1], b.shape[1])
        a, b = _pad(a, width), _pad(b, width)
        spread, note = _pair_spread(test, a, b, groups, one_sample, plan)
        notes += [note] if note else []
        if spread is None:
            undefined += 1
        elif spread == 0:
            identical += 1
        else:
            spreads.append(spread)
    if identical:
        notes.append(f"{identical} pair(s) scored identically on every case left out")
    if undefined:
        notes.append(f"{undefined} pair(s) with < 2 shared cases left out")
    if one_sample and plan.samples_per_case > 1 and test != MCNEMAR:
        notes.append("pilot has 1 sample per case: Var(d) used as measured")
    note = "; ".join(dict.fromkeys(notes))
    if not spreads:
        none = plan.analysis(test, None)
        return MetricPower(metric, test, 0, none, none, note or "no usable pair")
    typical = plan.analysis(test, float(pystats.median(spreads)))
    worst = plan.analysis(test, max(spreads))
    return MetricPower(metric, test, len(spreads), typical, worst, note)


def _pair_spread(
    test: str, a: np.ndarray, b: np.ndarray, groups: np.ndarray, one_sample: bool, plan: _Planner
) -> tuple[float | None, str]:
    """The planning spread of one pair (cases × samples): the discordant share of the
    shared (case, sample) scores for McNemar, Var(group mean d) for the clustered t,
    Var(d) for the paired t; None when fewer than 2 cases are shared."""
    if test == MCNEMAR:
        shared = ~(np.isnan(a) | np.isnan(b))
        if np.any(shared, axis=1).sum() < 2:
            return None, ""
        return float(np.mean(a[shared] != b[shared])), ""
    if test == CLUSTERED_T:
        with np.errstate(all="ignore"):
            ma, mb = np.nanmean(a, axis=1), np.nanmean(b, axis=1)
        keep = ~(np.isnan(ma) | np.isnan(mb))
        if keep.sum() < 2:
            return None, ""
        d = ma[keep] - mb[keep]
        if np.all(d == d[0]):
            return 0.0, ""
        return plan.cluster_spread(d, groups[keep])
    result = power_from_pilot(
        a[:, 0] if one_sample else a,
        b[:, 0] if one_sample else b,
        samples_per_case=plan.samples_per_case,
        n=plan.n_cases,
    )
    return result.var_diff, ""


def _span(metric: str) -> float | None:
    """The largest difference two configs' means of ``metric`` can have (None: unbounded)."""
    bounds = get_metric(metric).bounds
    return None if bounds is None or math.isinf(bounds[1] - bounds[0]) else bounds[1] - bounds[0]


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    if x.shape[1] == width:
        return x
    return np.hstack([x, np.full((x.shape[0], width - x.shape[1]), np.nan)])


def render_power(plan: PowerPlan, columns: int = 100) -> str:
    """The plan as terminal text; the spread source (pilot or assumption) comes first.
    Within ``columns`` (the terminal's): prose wrapped between words, the table's
    headings over several lines and, if still too wide, each metric's name on a line
    of its own above its row (a terminal cut the 150-column table mid-word)."""
    samples = f"{plan.samples_per_case} sample{'s' * (plan.samples_per_case != 1)} per case"
    cases = f"{plan.n_cases} cases"
    if plan.n_clusters:
        cases += f" in {plan.n_clusters} groups ({plan.n_cases / plan.n_clusters:.3g} per group)"
    lines = [
        f"Power for sweep {plan.sweep}: {plan.n_configs} configs, {cases}, {samples}",
        f"Comparisons: {plan.mode}, m = {plan.n_comparisons}; α = {plan.alpha:g} "
        f"(α/m = {plan.alpha / plan.n_comparisons:.3g}, Bonferroni), power {plan.power:.0%}, "
        f"δ = {plan.delta:g} in each metric's units",
        f"Spreads: {plan.source}",
    ]
    lines = [x for line in lines for x in textwrap.wrap(line, columns, subsequent_indent="  ")]
    lines.append("")
    header = ["metric", "test", "pairs", "spread typical", "worst", f"MDD at n = {plan.n_cases}",
              "worst", f"cases for δ = {plan.delta:g}", "worst"]  # fmt: skip
    if plan.n_clusters:
        header += [f"groups for δ = {plan.delta:g}", "worst"]
    rows = []
    for r in plan.metrics:
        row = [
            r.metric,
            r.test,
            str(r.pairs) if r.pairs else "-",
            _num(r.typical.var_diff),
            _num(r.worst.var_diff),
            _mdd(r.typical.min_detectable_difference, r.span),
            _mdd(r.worst.min_detectable_difference, r.span),
            _num(r.typical.cases_needed),
            _num(r.worst.cases_needed),
        ]
        if plan.n_clusters:
            row += [_num(r.typical.clusters_needed), _num(r.worst.clusters_needed)]
        rows.append(row)
    lines += _fit_table(header, rows, columns)
    notes = [*plan.notes]
    notes += [f"{r.metric}: {n}" for r in plan.metrics for n in (r.note, r.typical.note) if n]
    notes += [note for r in plan.metrics if (note := _beyond(r, plan))]
    notes += [f"{r.metric} (worst): {r.worst.note}" for r in plan.metrics
              if r.worst.note and r.worst.note != r.typical.note]  # fmt: skip
    if notes:
        lines += ["", "Notes:"]
        for note in dict.fromkeys(notes):
            lines += textwrap.wrap(note, columns, initial_indent="- ", subsequent_indent="  ")
    lines += [
        "",
        *textwrap.wrap(
            "spread: Var(d) for the paired t (noncentral t on n − 1 df); the discordant share "
            "for the exact McNemar test (exact power by enumeration); the variance of a group's "
            "mean difference for the clustered paired t (t on C − 1 df, the suite's cases per "
            "group kept); a Wilcoxon (ordinal or clearly skewed differences) is planned as the "
            "paired t. typical: the median spread over the pairs; worst: the largest. MDD: "
            "the smallest difference found with that power at the suite's size. n/a: not "
            "defined (no usable pairs, or not reachable: see the notes).",
            columns,
            break_on_hyphens=False,
        ),
    ]
    return "\n".join(lines) + "\n"


def _fit_table(header: list[str], rows: list[list[str]], columns: int) -> list[str]:
    """The table's lines, cells two spaces apart; see :func:`render_power` for the fit."""

    def lay_out(head: list[str], body: list[list[str]], indent: str) -> list[str]:
        head = [h.replace(" = ", "\0=\0") for h in head]  # "δ = 0.05" stays whole
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        if len(indent) + sum(widths) + 2 * (len(widths) - 1) > columns:
            words = [max(map(len, h.split()), default=0) for h in head]
            widths = [max([w, *(len(r[i]) for r in body)]) for i, w in enumerate(words)]
        wrapped = [
            textwrap.wrap(h, w, break_long_words=False) or [""]
            for h, w in zip(head, widths, strict=True)
        ]
        depth = max(map(len, wrapped))
        heads = [[""] * (depth - len(h)) + h for h in wrapped]  # headings sit on the rows
        return [
            (indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
            .rstrip()
            .replace("\0", " ")
            for r in [*zip(*heads, strict=True), *body]
        ]

    flat = lay_out(header, rows, "")
    if max(map(len, flat)) <= columns:
        return flat
    # each metric's name on a line of its own above its row; still too wide (a clustered
    # plan's 11 columns were 92 at 80), its test beside it
    for lead in (1, 2):
        stacked = lay_out(header[lead:], [r[lead:] for r in rows], "  ")
        if max(map(len, stacked)) <= columns:
            break
    depth = len(stacked) - len(rows)
    return [
        *stacked[:depth],
        *(
            x
            for r, line in zip(rows, stacked[depth:], strict=True)
            for x in (f"{', '.join(r[:lead])}:", line)
        ),
    ]


def _mdd(x: float | None, span: float | None) -> str:
    """A minimum detectable difference; beyond the metric's ``span``, only that it is
    (a 0/1 metric's read "5.867" at 12 cases in 3 groups)."""
    return f"> {span:g}" if x is not None and span is not None and x > span else _num(x)


def _beyond(r: MetricPower, plan: PowerPlan) -> str:
    """The note of a metric whose MDD is beyond its range; else ""."""
    mdd = r.worst.min_detectable_difference
    if mdd is None or r.span is None or mdd <= r.span:
        return ""
    return (
        f"{r.metric}: the MDD at n = {plan.n_cases} ({mdd:.3g}) is beyond the metric's range "
        f"(differences of at most {r.span:g}): no difference it can have is found with "
        f"{plan.power:.0%} power at this size; the cases for δ say how many are needed"
    )


def _num(x: float | int | None) -> str:
    if x is None:
        return "n/a"  # short: the table fits a terminal; the footnote says what it means
    return str(x) if isinstance(x, int) else f"{x:.4g}"
