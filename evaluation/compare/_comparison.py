"""Comparisons from stored results: database rows → evaluation.statistics → report and rows.

``compare_experiment`` compares the configs of one experiment (the stage that ends a
sweep); ``compare_stored`` compares configs of several stored experiments of one suite on
the cases they share (last night's run against the accepted baseline). Both give a
:class:`ComparisonOutcome`: the statistics report, its markdown, flat tables and the
ComparisonRow fields to store. Score types and directions come from the metrics
registry; per-generation ``latency_s`` is compared too (lower is better). Bad input
(configs without shared cases, zero variance, n < 2, NaN scores) becomes a note in the
report; only a comparison that cannot be set up at all raises an EvalError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from evaluation.compare._config_refs import (
    SelectedConfig,
    check_shared_cases,
    find_experiment,
    parse_selections,
    resolve_baseline,
    select_configs,
)
from evaluation.compare._leaderboard import SIMULATED_BANNER
from evaluation.errors import EvalError
from evaluation.metrics import get_metric
from evaluation.run._scoring import TIMING_METRICS
from evaluation.statistics import (
    Adjustment,
    StatisticsReport,
    analyze,
    render_markdown,
    table_rows,
)
from evaluation.statistics.effects import DEFAULT_PARAMETERS
from evaluation.storage.comparisons import energy_per_generation, latency_scores
from evaluation.storage.models import Experiment
from evaluation.storage.repository import aggregates_frame, experiment_configs, scores_frame

LATENCY = "latency_s"
SCORE_COLUMNS = ["config", "case_id", "sample_index", "group", "metric", "value"]

__all__ = [
    "ComparisonOutcome",
    "SelectedConfig",
    "compare_experiment",
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

    def verdicts(self) -> dict[str, dict[str, Any]]:
        """Per metric: the winner (or None), the configs tied at the top, those
        significantly worse than the best, the verdict."""
        return {
            v["metric"]: {
                "winner": v["winner"],
                "tied": v["tied_at_top"],
                "worse": v["significantly_worse"],
                "verdict": v["verdict"],
            }
            for v in self.tables["verdicts"]
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
    row = find_experiment(session, experiment)
    configs = select_configs(session, row, ref=None, prefix="")
    return _compare(
        session,
        [row],
        configs,
        run_label=row.name,
        title=f"Comparison: {row.name}",
        baseline=baseline if baseline is not None else row.baseline,
        adjust=adjust,
        metrics=metrics,
        alpha=alpha,
        delta=delta,
    )


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
    configs are called "<experiment>:<label>". ``baseline`` names one selected config (by
    that name, by its experiment when that contributes one config, or by hash/label).
    Refuses (EvalError) experiments of different suites or without a shared case."""
    if not selections:
        raise EvalError("nothing to compare: name at least one experiment")
    experiments: dict[str, Experiment] = {}
    for name, _ in selections:
        experiments.setdefault(name, find_experiment(session, name))
    suites = {e.suite for e in experiments.values()}
    if len(suites) > 1:
        listing = ", ".join(f"{e.name} ({e.suite})" for e in experiments.values())
        raise EvalError(f"cannot compare experiments of different suites: {listing}")
    chosen: dict[tuple[int, str], SelectedConfig] = {}
    for name, ref in selections:
        for c in select_configs(session, experiments[name], ref=ref, prefix=f"{name}:"):
            chosen.setdefault((c.experiment_id, c.config_hash), c)
    configs = list(chosen.values())
    rows = list(experiments.values())
    if len(rows) > 1:
        check_shared_cases(session, rows, configs)
    run_label = "-vs-".join(
        dict.fromkeys(name if ref is None else f"{name}:{ref}" for name, ref in selections)
    )
    return _compare(
        session,
        rows,
        configs,
        run_label=run_label,
        title="Comparison: " + " vs ".join(dict.fromkeys(n for n, _ in selections)),
        baseline=baseline,
        adjust=adjust,
        metrics=metrics,
        alpha=alpha,
        delta=delta,
    )


def _compare(
    session: Session,
    experiments: list[Experiment],
    configs: list[SelectedConfig],
    *,
    run_label: str,
    title: str,
    baseline: str | None,
    adjust: Adjustment,
    metrics: Sequence[str] | None,
    alpha: float,
    delta: float | None,
) -> ComparisonOutcome:
    notes: list[str] = []
    wanted = _metrics(experiments, metrics, notes)
    scores = _score_frame(session, experiments, configs, wanted)
    present = [m for m in wanted if (scores["metric"] == m).any()]
    for m in wanted:
        if m not in present:
            notes.append(f"{m}: no scored generation of any selected config; not compared")
        else:
            have = set(scores.loc[scores["metric"] == m, "config"])
            if missing := [c.name for c in configs if c.name not in have]:
                notes.append(f"{m}: no scored generation for {', '.join(missing)}; left out")
        if m in present and get_metric(m).corpus_level:
            notes.append(
                f"{m} is a corpus metric: the paired tests use its per-case values, "
                "the leaderboard its corpus value"
            )
    quality = next((m for m in present if m not in TIMING_METRICS), None)
    facts = _facts(session, experiments, configs, quality)
    base = resolve_baseline(baseline, configs)
    report = _analyze(scores, present, facts, quality, base, adjust, alpha, delta, notes)
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
    markdown = _markdown(render_markdown(report, banner=banner, title=title), title, notes, configs)
    tables = table_rows(report)
    return ComparisonOutcome(
        run_label=run_label,
        simulated=bool(simulated),
        configs=tuple(configs),
        report=report,
        markdown=markdown,
        tables=tables,
        rows=[_stored_row(r) for r in tables["comparisons"]],
        notes=tuple(notes),
    )


def _metrics(
    experiments: list[Experiment], metrics: Sequence[str] | None, notes: list[str]
) -> list[str]:
    if metrics is not None:
        wanted = list(dict.fromkeys(metrics))
    else:
        first = list(experiments[0].metrics)
        wanted = [m for m in first if all(m in e.metrics for e in experiments[1:])]
        if dropped := [m for m in first if m not in wanted]:
            notes.append(f"not in every experiment, not compared: {', '.join(dropped)}")
        wanted.append(LATENCY)
    for m in wanted:
        get_metric(m)  # MetricError naming the known metrics
    return list(dict.fromkeys(wanted))


def _score_frame(
    session: Session,
    experiments: list[Experiment],
    configs: list[SelectedConfig],
    metrics: list[str],
) -> pd.DataFrame:
    parts = []
    for e in experiments:
        names = {c.config_hash: c.name for c in configs if c.experiment_id == e.id}
        scores = scores_frame(session, e.id)
        if LATENCY in metrics and not (scores["metric"] == LATENCY).any():
            scores = pd.concat([scores, latency_scores(session, e.id)], ignore_index=True)
        scores = scores[scores["metric"].isin(metrics) & scores["config"].isin(names)]
        parts.append(scores.assign(config=scores["config"].map(names))[SCORE_COLUMNS])
    frame = pd.concat(parts, ignore_index=True)
    return frame.assign(value=pd.to_numeric(frame["value"], errors="coerce").astype(float))


def _facts(
    session: Session,
    experiments: list[Experiment],
    configs: list[SelectedConfig],
    quality: str | None,
) -> pd.DataFrame:
    """One row per config: swept parameters (one experiment only: across experiments a
    parameter's effect would be mixed with the experiments' difference), quality (mean of
    the first quality metric), latency p95 and energy per generation."""
    rows = []
    for e in experiments:
        params = experiment_configs(session, e.id).set_index("hash")
        aggregates = aggregates_frame(session, e.id)
        means = {(r.metric, r.config_hash): r.mean for r in aggregates.itertuples()}
        energy = energy_per_generation(session, e.id)
        for c in configs:
            if c.experiment_id != e.id:
                continue
            row: dict[str, Any] = {"config": c.name}
            if len(experiments) == 1:
                row |= {p: params.at[c.config_hash, p] for p in DEFAULT_PARAMETERS if p in params}
            if quality is not None:
                row[quality] = means.get((quality, c.config_hash))
            row["latency_p95_s"] = means.get(("latency_p95_s", c.config_hash))
            row["energy_j"] = energy.get(c.config_hash)
            rows.append(row)
    facts = pd.DataFrame(rows)
    swept = [p for p in DEFAULT_PARAMETERS if p in facts and facts[p].dropna().nunique() >= 2]
    unswept = [p for p in DEFAULT_PARAMETERS if p in facts and p not in swept]
    return facts.drop(columns=unswept).astype({p: float for p in swept})


def _analyze(scores, metrics, facts, quality, baseline, adjust, alpha, delta, notes):
    """``analyze`` versus the baseline on the metrics the baseline has scores for, all
    pairs on the others (a baseline without scores cannot anchor a comparison)."""
    types = {m: get_metric(m).score_type for m in metrics}
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
        facts=facts,
        adjust=adjust,
        alpha=alpha,
        delta=delta,
        quality=quality or "quality",
        quality_higher_is_better=directions.get(quality) is not False,
    )
    reports = []
    for subset, base in ((anchored, baseline), ([m for m in metrics if m not in anchored], None)):
        if subset:
            part = scores[scores["metric"].isin(subset)]
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
