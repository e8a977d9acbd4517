"""The retraining report (markdown, for the retrain_selector flow's artifact)."""

from __future__ import annotations

import math
from typing import Any

from evaluation.statistics.precision import significant
from selection.quality_text import quality, quality_change
from selection.versions import RetrainOutcome

_TOP_FEATURES = 8


def render_report(outcome: RetrainOutcome) -> str:
    """Cross-validated error per target, feature importances and the promotion decision."""
    result, decision = outcome.result, outcome.decision
    verdict = "promoted" if decision.promoted else "kept, not promoted"
    lines = [
        f"# Selector version {outcome.version_id}: {verdict}",
        "",
        decision.reason,
        "",
        "## Training data",
        "",
        f"- {result.n_generations} generations ({outcome.n_outcomes} recorded outcomes), "
        f"{result.n_rows} (config, suite) aggregates, "
        f"task types: {', '.join(result.model.task_types)}",
        f"- cross-validation grouped by {result.grouping} "
        f"({result.hyperparameters.n_splits} folds at most), "
        f"a {result.hyperparameters.ensemble_size}-member ensemble of boosted trees per target",
        f"- data fingerprint `{result.fingerprint[:16]}`, scikit-learn {outcome.sklearn_version}, "
        f"trained in {result.seconds:.1f} s",
        *[f"- note: {note}" for note in result.notes],
        "",
        "## Cross-validated error (held-out suites)",
        "",
        "| target | MAE | relative error | RMSE | sampling noise | model error "
        "| within 90% bound | rows | groups |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for target, metrics in result.metrics.items():
        lines.append(_metrics_row(target, metrics))
    lines += [
        "",
        "Errors against each held-out suite's measured aggregate. Quality on its metric's "
        "0–1 scale; MAE of latency in seconds; RMSE, sampling noise and model error of "
        "positive targets on the log scale (≈ relative). Model error = sqrt(RMSE² − "
        "noise²): what is left once the measurements' own noise is taken out. The last "
        "error column checks the interval model: the share of residuals within "
        "1.645·sqrt(model² + noise).",
        "",
    ]
    for target, importances in result.importances.items():
        lines += [
            f"## What drives {target} (permutation importance)",
            "",
            "| feature | MAE increase when shuffled |",
            "|---|---|",
        ]
        top = list(importances.items())[:_TOP_FEATURES]
        lines += [f"| {name} | {_number(value, target)} |" for name, value in top]
        lines.append("")
    if decision.comparison:
        lines += [
            f"## Comparison with version {decision.incumbent_id} ({decision.basis})",
            "",
            "The new version is worse on a target when the difference of errors (its lower "
            "bound, for paired rows) exceeds the margin.",
            "",
            "| target | new version | current version | difference, 95% lower bound | margin |",
            "|---|---|---|---|---|",
        ]
        for target, errors in decision.comparison.items():
            cells = [_error(target, errors.get(k)) for k in ("candidate", "incumbent")]
            cells.append(_difference(target, errors.get("difference_low")))
            cells.append(_difference(target, errors.get("margin")))
            lines.append(f"| {target} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _metrics_row(target: str, metrics: dict[str, Any]) -> str:
    if "mae" not in metrics:
        note = metrics.get("note", "not fitted")
        return f"| {target} | {note} | | | | | | {metrics['n_rows']} | |"
    is_quality = target == "quality"
    relative = metrics.get("relative_error")

    def spread(value: float) -> str:
        return quality(value) if is_quality else f"{100 * value:.1f}%"

    cells = [
        quality(metrics["mae"]) if is_quality else f"{metrics['mae']:.3g}",
        "" if relative is None else f"{100 * relative:.1f}%",
        spread(metrics["rmse"]),
        spread(metrics["noise_rmse"]),
        spread(metrics["model_rmse"]),
        f"{100 * metrics['coverage']:.0f}%",
        str(metrics["n_rows"]),
        str(metrics["n_groups"]),
    ]
    return f"| {target} | " + " | ".join(cells) + " |"


def _number(value: float, target: str) -> str:
    if target == "quality":
        return significant(value)  # 3 significant figures: an importance can be 0.0004
    return f"{100 * value:.1f}% (log scale)"


def _error(target: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    if target == "quality":
        return f"MAE {quality(value)}"
    return f"{100 * value:.1f}% relative"


def _difference(target: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "(no paired rows)"
    return quality_change(value) if target == "quality" else f"{100 * value:+.1f}%"
