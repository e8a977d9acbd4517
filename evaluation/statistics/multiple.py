"""N configs at once: paired comparisons with multiplicity adjustment, winner or tie.

Comparisons are all pairs (m = N(N − 1)/2) or each config versus a baseline (m = N − 1).
p-values are adjusted by the method passed explicitly: "holm" (family-wise error) or
"fdr_bh" (false discovery rate), see :mod:`._adjust`. A winner is declared only
when the best-scoring config is significantly better than every other config after
adjustment; otherwise the configs not separable from it are reported as tied at the top
(:mod:`.verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import pandas as pd

from evaluation.statistics._adjust import ADJUSTMENT_NAMES, Adjustment, adjust_p_values
from evaluation.statistics._cases import CaseTable, case_table
from evaluation.statistics.paired import (
    PairedComparison,
    PairedTest,
    ScoreType,
    ZeroMethod,
    compare_in_table,
)
from evaluation.statistics.power import PowerAnalysis, power_for_test
from evaluation.statistics.ranking import TieKey, rank_order
from evaluation.statistics.verdict import decide
from evaluation.wording import corpus_figure


@dataclass(frozen=True)
class AdjustedComparison:
    """One pair with its adjusted p-value, decision and power at the family's α/m."""

    comparison: PairedComparison
    p_adjusted: float | None
    significant: bool
    power: PowerAnalysis


@dataclass(frozen=True)
class MultiComparison:
    """All comparisons of one metric, the ranking (best first) and the verdict."""

    metric: str
    score_type: str
    higher_is_better: bool | None
    mode: Literal["all_pairs", "baseline"]
    baseline: str | None
    adjustment: str
    alpha: float
    ranking: tuple[tuple[str, float | None], ...]
    comparisons: tuple[AdjustedComparison, ...]
    winner: str | None
    tied_at_top: tuple[str, ...]
    verdict: str
    notes: tuple[str, ...] = ()
    significantly_worse: tuple[str, ...] = ()


def config_means(table: CaseTable) -> pd.Series:
    """Mean over each config's scored cases (case means, K samples averaged first)."""
    return table.means.mean(axis=0, skipna=True)


def compare_many(
    scores: pd.DataFrame | CaseTable,
    metric: str,
    *,
    score_type: ScoreType,
    higher_is_better: bool | None = True,
    configs: list[str] | None = None,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    alpha: float = 0.05,
    test: PairedTest = "auto",
    confidence: float = 0.95,
    power: float = 0.80,
    delta: float | None = None,
    zero_method: ZeroMethod = "pratt",
    n_resamples: int = 9999,
    seed: int = 0,
    ties: Mapping[str, TieKey] | None = None,
    bounds: tuple[float, float] | None = None,
    suite_cases: int = 0,
    suite_part: str = "subset",
    suite_named: int = 0,
    suite_run: Mapping[str, tuple[int, int]] | None = None,
    headline: Mapping[str, float] | None = None,
) -> MultiComparison:
    """Compare configs on ``metric``: all pairs, or each versus ``baseline``.
    ``headline``: config -> the figure configs are ranked and named by where it is not
    the mean of their case scores (a corpus metric's corpus value, as the leaderboard
    ranks them); the pairs are still tested on the case scores, and the verdict says so.
    ``higher_is_better=None``: a descriptive metric, compared but given no verdict.
    ``ties``: how configs with equal means are ordered (``ranking.tie_keys``).
    ``bounds``: the metric's scale, which bounds each difference's interval.
    ``suite_cases``: the suite's size; the verdict says when a mean rests on fewer cases,
    and which (``suite_part``: "subset", "first", "cut short", "race", "named";
    ``wording.part_of_suite``; ``suite_named``: its ``named``; ``suite_run``: per
    config, its cases run and those whose every generation failed, ``wording.with_failures``).

    Each pair is a :func:`compare_in_table` comparison; the family of defined p-values is
    adjusted together (undefined ones stay undefined and count as "not significant").
    Power per pair: minimum detectable difference at its n with α/m, and the cases
    needed for ``delta``, for the test the pair ran (:func:`.power.power_for_test`).
    """
    if adjust not in ADJUSTMENT_NAMES:
        raise ValueError(f"adjust must be one of {list(ADJUSTMENT_NAMES)}, got {adjust!r}")
    table = scores if isinstance(scores, CaseTable) else case_table(scores, metric)
    names = table.configs if configs is None else list(configs)
    unknown = [c for c in names + ([baseline] if baseline else []) if c not in table.configs]
    if unknown:
        raise ValueError(f"no scores on {metric!r} for config(s) {unknown}")
    notes: list[str] = []
    means = config_means(table)[names]
    if len(means.dropna()) < len(names):
        notes.append("no scored case for: " + ", ".join(c for c in names if pd.isna(means[c])))
    if headline is not None:  # NaN where a config has no headline figure
        means = pd.Series({c: headline.get(c, math.nan) for c in names}).where(means.notna())
    scored = means.dropna()
    ranking = [
        (c, None if c not in scored.index else float(scored[c]))
        for c in rank_order({c: scored.get(c) for c in names}, higher_is_better, ties=ties)
    ]

    order = [c for c, _ in ranking]
    if baseline is None:
        mode = "all_pairs"
        pairs = list(combinations(order, 2))
    else:
        mode = "baseline"
        pairs = [(c, baseline) for c in order if c != baseline]
    results = [
        compare_in_table(
            table,
            a,
            b,
            score_type=score_type,
            test=test,
            confidence=confidence,
            zero_method=zero_method,
            n_resamples=n_resamples,
            seed=seed,
            bounds=bounds,
        )
        for a, b in pairs
    ]
    p_adj, reject = adjust_p_values([r.p_value for r in results], alpha, adjust)
    m = max(1, len(results))
    adjusted = tuple(
        AdjustedComparison(
            comparison=r,
            p_adjusted=pa,
            significant=rej,
            power=power_for_test(
                r.test,
                n=r.n_used,
                sd_diff=r.sd_diff,
                se_diff=r.se_diff,
                n_clusters=r.n_clusters,
                n_discordant=r.n_discordant,
                delta=delta,
                alpha=alpha,
                power=power,
                n_comparisons=m,
            ),
        )
        for r, pa, rej in zip(results, p_adj, reject, strict=True)
    )
    verdict = decide(
        metric,
        ranking,
        adjusted,
        higher_is_better,
        f"{ADJUSTMENT_NAMES[adjust]}-adjusted, α = {alpha:g}",
        baseline,
        cases={c: int(n) for c, n in table.means[names].notna().sum(axis=0).items()},
        suite_cases=suite_cases,
        suite_part=suite_part,
        suite_named=suite_named,
        suite_run=suite_run,
        headline=corpus_figure(metric) if headline is not None else "",
    )
    return MultiComparison(
        metric=metric,
        score_type=score_type,
        higher_is_better=higher_is_better,
        mode=mode,
        baseline=baseline,
        adjustment=adjust,
        alpha=alpha,
        ranking=tuple(ranking),
        comparisons=adjusted,
        winner=verdict.winner,
        tied_at_top=verdict.tied_at_top,
        verdict=verdict.text,
        significantly_worse=verdict.significantly_worse,
        notes=tuple(notes),
    )
