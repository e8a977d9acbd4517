"""Comparisons from stored results: database rows → evaluation.statistics → report and rows.

``compare_experiment`` compares the configs of one experiment (the stage that ends a
sweep); ``compare_stored`` compares configs of several stored experiments of one suite on
the cases they share (last night's run against the accepted baseline); both read their
inputs (``_inputs``) and call ``compare_inputs``. Each gives a :class:`ComparisonOutcome`:
the statistics report, its markdown, flat tables, the ComparisonRow fields to store and
the digest of its inputs. Score types and directions come from the metrics
registry; per-generation ``latency_s`` is compared too (lower is better). Bad input
(configs without shared cases, zero variance, n < 2, NaN scores) becomes a note in the
report; only a comparison that cannot be set up at all raises an EvalError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from evaluation.compare._config_refs import SelectedConfig, find_experiment, parse_selections
from evaluation.compare._inputs import ComparisonInputs, experiment_inputs, stored_inputs
from evaluation.compare._leaderboard import SIMULATED_BANNER
from evaluation.compare._text import verdicts_by_metric
from evaluation.metrics import get_metric
from evaluation.statistics import (
    Adjustment,
    StatisticsReport,
    analyze,
    render_markdown,
    table_rows,
)

__all__ = [
    "ComparisonOutcome",
    "SelectedConfig",
    "compare_experiment",
    "compare_inputs",
    "compare_stored",
    "find_experiment",
    "parse_selections",
]


@dataclass(frozen=True)
class ComparisonOutcome:
    """Everything one comparison produced. ``rows`` are ComparisonRow fields (without
    ``run_label``), ``tables`` the flat tables of ``evaluation.statistics.table_rows``."""

    run_label: str
    simulated: bool
    configs: tuple[SelectedConfig, ...]
    report: StatisticsReport
    markdown: str
    tables: dict[str, list[dict[str, Any]]]
    rows: list[dict[str, Any]]
    notes: tuple[str, ...]
    inputs_digest: str
    adjust: Adjustment
    alpha: float

    def verdicts(self) -> dict[str, dict[str, Any]]:
        """Per metric: the winner (or None), the configs tied at the top, those
        significantly worse than the best, the verdict."""
        return verdicts_by_metric(self.tables["verdicts"])

    def record(self) -> dict[str, Any]:
        """What is stored beside the rows (ComparisonRun fields without ``run_label``)."""
        return {
            "inputs_digest": self.inputs_digest,
            "adjust": self.adjust,
            "alpha": self.alpha,
            "simulated": self.simulated,
            "verdicts": self.tables["verdicts"],
            "markdown": self.markdown,
        }


def compare_experiment(
    session: Session,
    experiment: str | int,
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    delta: float | None = None,
) -> ComparisonOutcome:
    """Compare every config of ``experiment`` (name or id) on its metrics and latency.
    ``baseline`` (a config hash or label; default: the spec's baseline) switches from
    all pairs to each config versus the baseline."""
    inputs = experiment_inputs(
        session, experiment, baseline=baseline, adjust=adjust, metrics=metrics
    )
    return compare_inputs(inputs, adjust=adjust, alpha=alpha, delta=delta)


def compare_stored(
    session: Session,
    selections: Sequence[tuple[str, str | None]],
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    delta: float | None = None,
) -> ComparisonOutcome:
    """Compare configs of stored experiments on the cases they share. Each selection is
    (experiment name, config hash or label), or (experiment, None) for all its configs;
    configs are called "<experiment>:<label>" ("<label>" from one experiment).
    ``baseline`` names one config of the experiments (by its name in the report, by its
    experiment when that contributes one config, or by hash/label), compared too where
    the selections leave it out.
    Refuses (EvalError) experiments of different suites or without a shared case."""
    inputs = stored_inputs(session, selections, baseline=baseline, adjust=adjust, metrics=metrics)
    return compare_inputs(inputs, adjust=adjust, alpha=alpha, delta=delta)


def compare_inputs(
    inputs: ComparisonInputs,
    *,
    adjust: Adjustment = "holm",
    alpha: float = 0.05,
    delta: float | None = None,
) -> ComparisonOutcome:
    """The comparison of ``inputs``: the statistics report, its markdown and rows."""
    notes = list(inputs.notes)
    experiments, configs = inputs.experiments, list(inputs.configs)
    report = _analyze(
        inputs.scores,
        list(inputs.metrics),
        inputs.facts,
        inputs.quality,
        inputs.baseline,
        adjust,
        alpha,
        delta,
        notes,
        inputs.suite_cases,
        inputs.suite_part,
        inputs.suite_named,
        inputs.suite_run,
        inputs.headline,
    )
    simulated = [e.name for e in experiments if e.simulated]
    if simulated and len(simulated) < len(experiments):
        notes.append(
            f"mixes simulated ({', '.join(simulated)}) and real experiments: the comparison "
            "says nothing about real models"
        )
    banner = (
        SIMULATED_BANNER
        if simulated
        else f"Real model outputs: {', '.join(e.name for e in experiments)} "
        f"(suite {experiments[0].suite})"
    )
    title = inputs.title
    corpus = [m for m in inputs.metrics if get_metric(m).corpus_level]
    body = render_markdown(report, banner=banner, title=title, corpus=corpus)
    markdown = _markdown(body, title, notes, configs)
    tables = table_rows(report)
    return ComparisonOutcome(
        run_label=inputs.run_label,
        simulated=bool(simulated),
        configs=tuple(configs),
        report=report,
        markdown=markdown,
        tables=tables,
        rows=[_stored_row(r) for r in tables["comparisons"]],
        notes=tuple(notes),
        inputs_digest=inputs.digest(adjust=adjust, alpha=alpha, delta=delta),
        adjust=adjust,
        alpha=alpha,
    )


def _analyze(
    scores,
    metrics,
    facts,
    quality,
    baseline,
    adjust,
    alpha,
    delta,
    notes,
    suite_cases,
    suite_part,
    suite_named,
    suite_run,
    headline,
):
    """``analyze`` versus the baseline on the metrics the baseline has scores for, all
    pairs on the others (a baseline without scores cannot anchor a comparison)."""
    types = {m: get_metric(m).score_type for m in metrics}
    bounds = {m: get_metric(m).bounds for m in metrics}
    directions = {m: direction(m) for m in metrics}
    anchored = metrics
    if baseline is not None:
        has = scores[scores["config"] == baseline].dropna(subset=["value"])
        anchored = [m for m in metrics if (has["metric"] == m).any()]
        for m in metrics:
            if m not in anchored:
                notes.append(f"{m}: baseline {baseline} has no score; all pairs compared")
    kw = dict(
        score_types=types,
        higher_is_better=directions,
        bounds=bounds,
        facts=facts,
        adjust=adjust,
        alpha=alpha,
        delta=delta,
        quality=quality or "quality",
        quality_higher_is_better=directions.get(quality) is not False,
        suite_cases=suite_cases,
        suite_part=suite_part,
        suite_named=suite_named,
        suite_run=suite_run,
        headline=headline,
    )
    reports = []
    for subset, base in ((anchored, baseline), ([m for m in metrics if m not in anchored], None)):
        if subset:
            # not copied where every row is in the subset: a copy of 200,000 score rows
            # was ~10 MiB at the comparison stage's peak, a run's highest (issue 46)
            wanted = scores["metric"].isin(subset)
            part = scores if wanted.all() else scores[wanted]
            reports.append(analyze(part, baseline=base, **kw))
    if not reports:
        notes.append("no scored generations: nothing to compare")
        return StatisticsReport((), (), (), ())
    order = {m: i for i, m in enumerate(metrics)}
    return StatisticsReport(
        summaries=tuple(s for r in reports for s in r.summaries),
        comparisons=tuple(
            sorted((c for r in reports for c in r.comparisons), key=lambda c: order[c.metric])
        ),
        effects=tuple(e for r in reports for e in r.effects),
        pareto=reports[0].pareto,
    )


def direction(metric: str) -> bool | None:
    """True when higher is better, False when lower is, None for a descriptive metric."""
    definition = get_metric(metric)
    return None if definition.descriptive else definition.higher_is_better


def _markdown(body: str, title: str, notes: list[str], configs: list[SelectedConfig]) -> str:
    """The statistics markdown with the comparison's notes under the title and a legend
    of the configs (name → experiment, hash) at the end."""
    lines = body.rstrip("\n").split("\n")
    at = lines.index(f"# {title}") + 1
    listed = ["", *[f"- {n}" for n in notes]] if notes else []
    legend = ["", "## Configs", "", "| name | experiment | hash |", "|---|---|---|"]
    legend += [f"| {c.name} | {c.experiment} | `{c.config_hash}` |" for c in configs]
    return "\n".join(lines[:at] + listed + lines[at:] + legend) + "\n"


def _stored_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric": r["metric"],
        "config_a": r["a"],
        "config_b": r["b"],
        "n_used": r["n_used"],
        "n_excluded": r["n_excluded"],
        "diff": r["diff"],
        "ci_low": r["diff_ci_low"],
        "ci_high": r["diff_ci_high"],
        "test": r["test"],
        "p_value": r["p_value"],
        "p_adjusted": r["p_adjusted"],
        "effect_size": r["effect_size"],
        "effect_size_name": r["effect_size_name"],
        "min_detectable_diff": r["min_detectable_difference"],
        "note": r["note"],
    }
