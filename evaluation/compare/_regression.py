"""The regression watch: a run compared with its accepted baseline, by four rules.

Rules (each alert names the config and the numbers that fired it):

``quality_drop``
    Per config present in both runs and per quality metric both recorded (every metric
    but the descriptive and timing ones in ``NOT_QUALITY``): a paired comparison on the
    shared cases, run minus baseline (``evaluation.statistics.compare_pair``, test chosen
    for the metric's score type: McNemar for binary, paired t or Wilcoxon otherwise),
    Holm-adjusted over every (config, metric) pair. Fires when the adjusted p-value is
    below ``alpha`` and the difference goes the metric's worse way.
``success_rate``
    Per config of the run: successful generations / generations below
    ``min_success_rate``.
``latency_p95``
    Per config present in both runs: the p95 of successful generations' latency above
    ``max_p95_ratio`` × the baseline's.
``gpu_utilisation``
    Per config with measured GPU telemetry: mean GPU utilisation below
    ``min_gpu_util_pct``. Configs without telemetry (no NVML on the flow's machine,
    remote hosts) are not judged, and the report says so.

Without a baseline only ``success_rate`` and ``gpu_utilisation`` are checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlmodel import Session

from evaluation.errors import EvalError, MetricError
from evaluation.metrics import NOT_QUALITY, get_metric
from evaluation.statistics import adjust_p_values, compare_pair
from evaluation.statistics.precision import told_apart
from evaluation.storage.repository import (
    experiment_configs,
    generations_frame,
    get_experiment,
    scores_frame,
)
from evaluation.storage.telemetry import telemetry_frame

Rule = Literal["quality_drop", "success_rate", "latency_p95", "gpu_utilisation"]
RULES: tuple[Rule, ...] = ("quality_drop", "success_rate", "latency_p95", "gpu_utilisation")


class RegressionDetected(EvalError):
    """A run regressed against its baseline; the message lists the alerts."""


@dataclass(frozen=True)
class Thresholds:
    alpha: float = 0.05
    min_success_rate: float = 0.90
    max_p95_ratio: float = 2.0
    min_gpu_util_pct: float = 50.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if not 0 <= self.min_success_rate <= 1:
            raise ValueError(f"min_success_rate must lie in [0, 1], got {self.min_success_rate}")
        if self.max_p95_ratio <= 0:
            raise ValueError(f"max_p95_ratio must be positive, got {self.max_p95_ratio}")
        if not 0 <= self.min_gpu_util_pct <= 100:
            raise ValueError(f"min_gpu_util_pct must lie in [0, 100], got {self.min_gpu_util_pct}")


@dataclass(frozen=True)
class RunData:
    """What the rules read about one experiment."""

    experiment: str
    suite: str
    metrics: tuple[str, ...]
    labels: Mapping[str, str]  # config hash -> label
    scores: pd.DataFrame  # long score rows (evaluation.storage.repository.scores_frame)
    generations: pd.DataFrame  # at least config_hash, status, latency_s
    gpu_util: Mapping[str, float] = field(default_factory=dict)  # config -> mean util %


@dataclass(frozen=True)
class Alert:
    """One rule firing for one config. ``observed`` is the run's value, ``reference`` the
    baseline's (when the rule compares), ``limit`` the threshold it crossed."""

    rule: Rule
    config: str
    label: str
    message: str
    observed: float | None = None
    reference: float | None = None
    limit: float | None = None
    metric: str | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class QualityComparison:
    config: str
    label: str
    metric: str
    n_cases: int
    baseline_mean: float | None
    run_mean: float | None
    diff: float | None
    ci: tuple[float, float] | None
    test: str
    p_adjusted: float | None
    worse: bool


@dataclass(frozen=True)
class RegressionReport:
    experiment: str
    baseline: str | None
    thresholds: Thresholds
    alerts: tuple[Alert, ...]
    checked: dict[str, int]  # rule -> checks made
    comparisons: tuple[QualityComparison, ...] = ()
    notes: tuple[str, ...] = ()
    no_baseline: str = ""
    """Without a baseline: why (the series has none; the run is itself its baseline)."""

    @property
    def regressed(self) -> bool:
        return bool(self.alerts)

    @property
    def compared(self) -> bool:
        """Whether a quality or latency rule compared anything with the baseline."""
        return bool(self.checked.get("quality_drop") or self.checked.get("latency_p95"))

    @property
    def rules_fired(self) -> tuple[str, ...]:
        return tuple(r for r in RULES if any(a.rule == r for a in self.alerts))

    def summary(self) -> str:
        """One line: what regressed, or that nothing did."""
        against = f"baseline {self.baseline}" if self.baseline else "no baseline"
        if not self.alerts and not self.compared:
            why = (
                f"nothing in common with baseline {self.baseline}"
                if self.baseline
                else self.no_baseline or "no baseline"
            )
            return (
                f"Nothing compared for {self.experiment} ({why}): the quality and latency "
                "rules did not run, the success-rate and GPU rules found nothing."
            )
        if not self.alerts:
            return f"No regression in {self.experiment} ({against})."
        parts = []
        for rule in self.rules_fired:
            fired = [a for a in self.alerts if a.rule == rule]
            more = f" (+{len(fired) - 1} more)" if len(fired) > 1 else ""
            parts.append(f"{fired[0].message}{more}")
        return f"Regression in {self.experiment} vs {against}: " + "; ".join(parts)

    def payload(self) -> dict[str, Any]:
        """The event payload: plain JSON."""
        return {
            "experiment": self.experiment,
            "baseline": self.baseline,
            "regressed": self.regressed,
            "rules": list(self.rules_fired),
            "summary": self.summary(),
            "alerts": [_json(asdict(a)) for a in self.alerts],
            "checked": dict(self.checked),
            "thresholds": asdict(self.thresholds),
            "notes": list(self.notes),
        }


def check_regression(
    run: RunData,
    baseline: RunData | None,
    thresholds: Thresholds | None = None,
    *,
    no_baseline: str = "",
) -> RegressionReport:
    """Apply the four rules (see the module docstring); ``no_baseline``: why there is no
    baseline, when there is none."""
    limits = thresholds or Thresholds()
    alerts: list[Alert] = []
    notes: list[str] = []
    checked = dict.fromkeys(RULES, 0)
    comparisons: list[QualityComparison] = []
    if baseline is None:
        why = f" ({no_baseline})" if no_baseline else ""
        notes.append(f"no baseline{why}: quality and latency rules not checked")
    elif baseline.suite != run.suite:
        notes.append(
            f"baseline {baseline.experiment} ran suite {baseline.suite!r}, this run "
            f"{run.suite!r}: quality and latency rules not checked"
        )
    else:
        shared = [c for c in run.labels if c in set(baseline.generations["config_hash"])]
        if not shared:
            notes.append(f"no config in common with baseline {baseline.experiment}")
        comparisons = _quality(run, baseline, shared, limits, notes)
        checked["quality_drop"] = sum(1 for c in comparisons if c.p_adjusted is not None)
        alerts += [_quality_alert(c, limits) for c in comparisons if c.worse]
        latency, n = _latency(run, baseline, shared, limits)
        alerts += latency
        checked["latency_p95"] = n
    success, checked["success_rate"] = _success(run, limits)
    alerts += success
    gpu, checked["gpu_utilisation"] = _gpu(run, limits)
    alerts += gpu
    if checked["gpu_utilisation"] == 0:
        notes.append(
            "GPU utilisation not measured for any config (no NVML where the flow ran, or "
            "remote hosts only): gpu_utilisation not checked"
        )
    return RegressionReport(
        experiment=run.experiment,
        baseline=None if baseline is None else baseline.experiment,
        thresholds=limits,
        alerts=tuple(alerts),
        checked=checked,
        comparisons=tuple(comparisons),
        notes=tuple(notes),
        no_baseline=no_baseline,
    )


def _quality(
    run: RunData,
    baseline: RunData,
    shared: list[str],
    limits: Thresholds,
    notes: list[str],
) -> list[QualityComparison]:
    metrics = []
    scored = set(run.scores["metric"]) & set(baseline.scores["metric"])
    for name in run.metrics:
        if name in NOT_QUALITY or name not in baseline.metrics or name not in scored:
            continue
        try:
            metrics.append(get_metric(name))
        except MetricError:
            notes.append(f"metric {name!r} is unknown here: not compared")
    pairs = []
    for config in shared:
        frame = pd.concat(
            [
                _tagged(run.scores, config, "run"),
                _tagged(baseline.scores, config, "baseline"),
            ],
            ignore_index=True,
        )
        for metric in metrics:
            result = compare_pair(
                frame, "run", "baseline", metric.name, score_type=metric.score_type
            )
            pairs.append((config, metric, result))
    adjusted, reject = adjust_p_values([p.p_value for _, _, p in pairs], limits.alpha, "holm")
    out = []
    for (config, metric, result), p_adj, significant in zip(pairs, adjusted, reject, strict=True):
        worse = result.diff is not None and (
            result.diff < 0 if metric.higher_is_better else result.diff > 0
        )
        out.append(
            QualityComparison(
                config=config,
                label=run.labels.get(config, config),
                metric=metric.name,
                n_cases=result.n_used,
                baseline_mean=result.mean_b,
                run_mean=result.mean_a,
                diff=result.diff,
                ci=result.diff_ci,
                test=result.test,
                p_adjusted=p_adj,
                worse=significant and worse,
            )
        )
    return out


def _tagged(scores: pd.DataFrame, config: str, tag: str) -> pd.DataFrame:
    part = scores[scores["config"] == config].copy()
    part["config"] = tag
    return part


def _quality_alert(c: QualityComparison, limits: Thresholds) -> Alert:
    return Alert(
        rule="quality_drop",
        config=c.config,
        label=c.label,
        metric=c.metric,
        observed=c.run_mean,
        reference=c.baseline_mean,
        limit=limits.alpha,
        p_value=c.p_adjusted,
        message=(
            f"{c.metric} fell from {c.baseline_mean:.3f} to {c.run_mean:.3f} on {c.label} "
            f"({c.test}, Holm-adjusted p = {c.p_adjusted:.2g} < {limits.alpha:g}, "
            f"n = {c.n_cases})"
        ),
    )


def _success(run: RunData, limits: Thresholds) -> tuple[list[Alert], int]:
    alerts = []
    by_config = run.generations.groupby("config_hash", sort=False)["status"]
    for config, status in by_config:
        rate = float((status == "ok").mean())
        if rate < limits.min_success_rate:
            label = run.labels.get(config, config)
            shown, bound = told_apart(100 * rate, 100 * limits.min_success_rate, 0)
            alerts.append(
                Alert(
                    rule="success_rate",
                    config=config,
                    label=label,
                    observed=rate,
                    limit=limits.min_success_rate,
                    message=(
                        f"success rate {shown}% < {bound}% on {label} "
                        f"({int((status == 'ok').sum())}/{len(status)} generations)"
                    ),
                )
            )
    return alerts, by_config.ngroups


def p95_latency(generations: pd.DataFrame) -> dict[str, float]:
    """Per config: the 95th percentile of successful generations' latency (linear
    interpolation, numpy's default)."""
    ok = generations[generations["status"] == "ok"].dropna(subset=["latency_s"])
    return {
        config: float(np.quantile(part.to_numpy(dtype=float), 0.95))
        for config, part in ok.groupby("config_hash", sort=False)["latency_s"]
    }


def _latency(
    run: RunData, baseline: RunData, shared: list[str], limits: Thresholds
) -> tuple[list[Alert], int]:
    now, before = p95_latency(run.generations), p95_latency(baseline.generations)
    alerts, checked = [], 0
    for config in shared:
        if config not in now or not before.get(config):
            continue
        checked += 1
        ratio = now[config] / before[config]
        if ratio > limits.max_p95_ratio:
            label = run.labels.get(config, config)
            shown, bound = told_apart(ratio, limits.max_p95_ratio, 1)
            alerts.append(
                Alert(
                    rule="latency_p95",
                    config=config,
                    label=label,
                    observed=now[config],
                    reference=before[config],
                    limit=limits.max_p95_ratio,
                    message=(
                        f"p95 latency {now[config]:.3g} s is {shown}x the baseline's "
                        f"{before[config]:.3g} s on {label} (limit {bound}x)"
                    ),
                )
            )
    return alerts, checked


def _gpu(run: RunData, limits: Thresholds) -> tuple[list[Alert], int]:
    alerts = []
    for config, util in run.gpu_util.items():
        if util < limits.min_gpu_util_pct:
            label = run.labels.get(config, config)
            shown, bound = told_apart(util, limits.min_gpu_util_pct, 0)
            alerts.append(
                Alert(
                    rule="gpu_utilisation",
                    config=config,
                    label=label,
                    observed=util,
                    limit=limits.min_gpu_util_pct,
                    message=(f"mean GPU utilisation {shown}% < {bound}% on {label}"),
                )
            )
    return alerts, len(run.gpu_util)


def load_run(session: Session, experiment: str) -> RunData:
    """An experiment's stored facts for the rules."""
    row = get_experiment(session, experiment)
    configs = experiment_configs(session, row.id)
    telemetry = telemetry_frame(session, row.id)
    measured = telemetry.dropna(subset=["mean_gpu_util_pct"])
    return RunData(
        experiment=row.name,
        suite=row.suite,
        metrics=tuple(row.metrics),
        labels=dict(zip(configs["hash"], configs["label"], strict=True)),
        scores=scores_frame(session, row.id),
        generations=generations_frame(session, row.id),
        gpu_util=dict(
            zip(measured["config_hash"], measured["mean_gpu_util_pct"].astype(float), strict=True)
        ),
    )


def render_markdown(report: RegressionReport) -> str:
    """The alert artifact: verdict, alerts, the quality comparisons and the thresholds."""
    t = report.thresholds
    verdict = (
        f"**REGRESSION**: {len(report.alerts)} alert(s), rules {', '.join(report.rules_fired)}"
        if report.regressed
        else "**No regression.**"
        if report.compared
        else f"**Nothing compared.** {report.summary()}"
    )
    lines = [
        f"# Regression check: {report.experiment}",
        "",
        f"Baseline: {report.baseline or report.no_baseline or '(none accepted yet)'}",
        "",
        verdict,
        "",
    ]
    if report.alerts:
        lines += [
            "| rule | config | observed | baseline | limit | detail |",
            "|---|---|---|---|---|---|",
        ]
        for a in report.alerts:
            lines.append(
                f"| {a.rule} | {a.label} | {_fmt(a.observed)} | {_fmt(a.reference)} | "
                f"{_fmt(a.limit)} | {a.message} |"
            )
        lines.append("")
    if report.comparisons:
        lines += [
            "## Quality, run vs baseline (paired on shared cases)",
            "",
            "| config | metric | n | baseline | run | diff [95% CI] | test | p (Holm) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in report.comparisons:
            ci = f" [{_fmt(c.ci[0])}, {_fmt(c.ci[1])}]" if c.ci else _no_interval(c)
            mark = " **worse**" if c.worse else ""
            lines.append(
                f"| {c.label} | {c.metric} | {c.n_cases} | {_fmt(c.baseline_mean)} | "
                f"{_fmt(c.run_mean)} | {_fmt(c.diff)}{ci}{mark} | {c.test} | "
                f"{_fmt(c.p_adjusted)} |"
            )
        lines.append("")
    checks = ", ".join(f"{rule} {n}" for rule, n in report.checked.items())
    lines += [
        f"Checks made: {checks}.",
        "",
        f"Thresholds: α = {t.alpha:g} (Holm), success rate ≥ {t.min_success_rate:.0%}, "
        f"p95 latency ≤ {t.max_p95_ratio:g}× baseline, GPU utilisation ≥ "
        f"{t.min_gpu_util_pct:g}%.",
    ]
    if report.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in report.notes]]
    return "\n".join(lines)


def _no_interval(c: QualityComparison) -> str:
    """Where the difference has no interval, why (``compare_pair`` gives none where every
    shared case differs by the same amount on a scale other than 0/1, or one case is shared)."""
    if c.diff is None:
        return ""
    if c.n_cases < 2:
        return " (no interval: 1 case)"
    return f" (no interval: all {c.n_cases} cases differ by it)"


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.3g}"


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
