"""Everything the statistics say about one sweep, computed in one call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from evaluation.statistics._cases import case_table, check_columns
from evaluation.statistics.effects import ParameterEffect, parameter_effects
from evaluation.statistics.intervals import MeanEstimate, summarize_config
from evaluation.statistics.multiple import Adjustment, MultiComparison, compare_many
from evaluation.statistics.paired import PairedTest, ScoreType
from evaluation.statistics.pareto import ParetoFront, pareto_fronts
from evaluation.statistics.ranking import tie_keys


@dataclass(frozen=True)
class StatisticsReport:
    """Means, comparisons, parameter effects and Pareto fronts of one sweep."""

    summaries: tuple[MeanEstimate, ...]
    comparisons: tuple[MultiComparison, ...]
    effects: tuple[ParameterEffect, ...]
    pareto: tuple[ParetoFront, ...]


def analyze(
    scores: pd.DataFrame,
    *,
    score_types: Mapping[str, ScoreType],
    higher_is_better: Mapping[str, bool | None] | None = None,
    facts: pd.DataFrame | None = None,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    alpha: float = 0.05,
    confidence: float = 0.95,
    power: float = 0.80,
    delta: float | Mapping[str, float] | None = None,
    test: PairedTest = "auto",
    bounds: Mapping[str, tuple[float, float] | None] | None = None,
    quality: str = "quality",
    quality_higher_is_better: bool = True,
    seed: int = 0,
    suite_cases: int = 0,
    suite_part: str = "subset",
    suite_named: int = 0,
    suite_run: Mapping[str, tuple[int, int]] | None = None,
    headline: Mapping[str, Mapping[str, float]] | None = None,
) -> StatisticsReport:
    """Per metric in ``scores``: means with intervals, paired comparisons (all pairs, or
    versus ``baseline``) with ``adjust`` adjustment and power, and — when per-config
    ``facts`` are given — parameter effects and the Pareto fronts of ``quality`` against
    latency p95 and energy. ``delta`` (one value, or one per metric) asks for the cases
    needed to detect that difference. ``bounds``: each bounded metric's scale, so its
    intervals stay on it. ``suite_cases``: the suite's size, so a verdict on means of part
    of it says so (which part: ``suite_part`` and ``suite_named``; ``suite_run``: each
    config's cases run and failed; as ``compare_many``).
    ``headline``: per metric, the figure each config is ranked by where it is not its
    case scores' mean (a corpus metric's corpus value; ``compare_many``). Every metric
    needs a score type; a metric whose direction is None is descriptive: compared, but no
    verdict and no parameter effects."""
    check_columns(scores)
    metrics = sorted(scores["metric"].dropna().astype(str).unique())
    untyped = [m for m in metrics if m not in score_types]
    if untyped:
        raise ValueError(f"no score type for metric(s) {untyped}")
    directions = dict(higher_is_better or {})
    ties = tie_keys(facts.to_dict("records")) if facts is not None and "config" in facts else None
    summaries: list[MeanEstimate] = []
    comparisons: list[MultiComparison] = []
    effects: list[ParameterEffect] = []
    for metric in metrics:
        table = case_table(scores, metric)
        up = directions.get(metric, True)
        scale = (bounds or {}).get(metric)
        summaries.extend(
            summarize_config(table, c, confidence=confidence, bounds=scale) for c in table.configs
        )
        metric_delta = delta.get(metric) if isinstance(delta, Mapping) else delta
        comparisons.append(
            compare_many(
                table,
                metric,
                score_type=score_types[metric],
                higher_is_better=up,
                baseline=baseline,
                adjust=adjust,
                alpha=alpha,
                test=test,
                confidence=confidence,
                power=power,
                delta=metric_delta,
                seed=seed,
                ties=ties,
                bounds=scale,
                suite_cases=suite_cases,
                suite_part=suite_part,
                suite_named=suite_named,
                suite_run=suite_run,
                headline=(headline or {}).get(metric),
            )
        )
        if facts is not None and up is not None:  # a descriptive metric has no best value
            effects.extend(
                parameter_effects(
                    table,
                    facts,
                    metric,
                    score_type=score_types[metric],
                    higher_is_better=up,
                    alpha=alpha,
                    adjust=adjust,
                    confidence=confidence,
                    test=test,
                    seed=seed,
                )
            )
    fronts: list[ParetoFront] = []
    if facts is not None and quality in facts.columns:
        fronts = pareto_fronts(facts, quality=quality, higher_is_better=quality_higher_is_better)
    return StatisticsReport(tuple(summaries), tuple(comparisons), tuple(effects), tuple(fronts))
