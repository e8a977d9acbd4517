"""The evidence wins: never recommend a config when a measured-feasible alternative is
significantly better.

Measured-feasible: among the feasible candidates (whose estimates, with their margin,
meet the limits: for a well-measured config these are its measurements), those measured
on the task type with at least ``MIN_GENERATIONS`` ok generations whose measured p95
latency is within the limit (and measured quality above ``min_quality``) — what a user
could check by hand in the leaderboard. On a corpus metric (chrF, BLEU) that is the block
of per-case means under it, not the corpus value the board ranks by: the tests below pair
per-case values, which a corpus value has none of, so the guards stay on the selector's
figure and the answer names the board's order where it differs
(:mod:`selection._corpus_board`). The model's choice is tested against the measured-feasible
configs whose measured mean beats its own, on the cases both were run on
(``evaluation.statistics.compare_scores``: exact McNemar for 0/1 scores, else the paired
test it picks), Holm-adjusted over the alternatives tested, α = ``ALPHA``. A
significantly better alternative replaces the choice (the best measured such one), and
the answer says why.

Only a paired test on the same cases can overrule: it is the evidence a user can check.
Without shared cases (the choice was never run, or on other cases) both configs are
already judged by their combined estimates (:mod:`selection.shrinkage`), which weigh the
alternative's measurement by its precision; testing the highest of many raw measured
means against the choice, as an earlier version did, rewards the luckiest of them (the
best of many means over 10 cases sits well above its true value). ``hand_floor`` is the
other direction: the model's pick must be estimated significantly better than the
best-estimated measured-feasible config (by its combined estimate, not its raw mean, for
the same reason), or that config is kept; a pick estimated mostly from measurements
(``EVIDENCE_WEIGHT``) is not a guess and is exempt. Both rest on the multilevel model of
the task type's measured configs; where those are too few to estimate it
(:attr:`selection.multilevel.Fit.ample`) there is no floor, and ``measured_above`` names
the by-hand choice measured above the pick for the answer to say so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from selection.model import SelectorModel
from selection.quality_text import quality, quality_change

MIN_GENERATIONS = 10
ALPHA = 0.05
MAX_TESTED = 20
MIN_SHARED_CASES = 5
EVIDENCE_WEIGHT = 0.5
"""The share of a combined estimate above which it counts as measured, not predicted
(as ``Option.basis`` says)."""


@dataclass(frozen=True)
class Override:
    """The alternative that replaces the model's choice, and why."""

    index: Any
    reason: str


def measured_feasible(
    table: pd.DataFrame, max_latency_s: float | None, min_quality: float | None
) -> pd.DataFrame:
    """Rows a user would call feasible from the measurements (see the module docstring)."""
    keep = table["measured_n"].fillna(0) >= MIN_GENERATIONS
    if max_latency_s is not None:
        keep &= table["measured_latency_p95"] <= max_latency_s
    if min_quality is not None:
        keep &= table["measured_quality_mean"] >= min_quality
    return table[keep.fillna(False)]


@dataclass(frozen=True)
class Paired:
    """A measured-feasible alternative measured above the pick, tested against it on the
    cases both ran: ``result`` is :func:`evaluation.statistics.compare_scores`' (its
    ``diff``: the alternative's mean minus the pick's), ``p_adjusted`` its p-value
    Holm-adjusted over the ``family`` alternatives tested."""

    index: Any
    result: Any
    p_adjusted: float
    significant: bool
    family: int


def paired_tests(
    model: SelectorModel,
    table: pd.DataFrame,
    chosen: Any,
    candidates: pd.DataFrame,
    task_type: str,
) -> list[Paired]:
    """The rows of ``candidates`` (measured-feasible) measured above ``table.loc[chosen]``,
    each tested against it on the cases both ran (the module docstring), in order of
    measured mean; empty where the pick was not measured or none shares enough cases."""
    from evaluation.statistics import adjust_p_values, compare_scores

    row = table.loc[chosen]
    own = row["measured_quality_mean"] if row["measured"] else row["quality"]
    better = candidates[(candidates.index != chosen) & (candidates["measured_quality_mean"] > own)]
    if better.empty:
        return []
    better = better.sort_values("measured_quality_mean", ascending=False).head(MAX_TESTED)
    scores = model.case_scores
    scores = scores[(scores["task_type"] == task_type)]
    wanted = [str(chosen), *map(str, better.index)]
    wide = scores[scores["config_hash"].isin(wanted)].pivot_table(
        index="case", columns="config_hash", values="quality", aggfunc="mean"
    )
    tested, p_values = [], []
    if row["measured"] and str(chosen) in wide.columns:
        for index in better.index:
            if str(index) not in wide.columns:
                continue
            pair = wide[[str(index), str(chosen)]].dropna()
            if len(pair) < MIN_SHARED_CASES:
                continue
            a, b = pair.iloc[:, 0].to_numpy(), pair.iloc[:, 1].to_numpy()
            binary = bool(np.isin(np.concatenate([a, b]), (0.0, 1.0)).all())
            result = compare_scores(a, b, score_type="binary" if binary else "continuous")
            if result.p_value is None or result.diff is None or result.diff <= 0:
                continue
            tested.append((index, result))
            p_values.append(result.p_value)
    if not tested:
        return []
    adjusted, reject = adjust_p_values(p_values, ALPHA, "holm")
    return [
        Paired(i, r, float(p), bool(ok), len(tested))
        for (i, r), p, ok in zip(tested, adjusted, reject, strict=True)
    ]


def evidence_override(tests: list[Paired]) -> Override | None:
    """An Override to the first of ``tests`` (:func:`paired_tests`) found significantly
    better than the pick; None when the choice stands."""
    winner = next((t for t in tests if t.significant), None)
    if winner is None:
        return None
    result = winner.result
    return Override(
        winner.index,
        f"measured significantly better than the model's pick on the "
        f"{result.n_used} cases both ran ({quality_change(result.diff)} quality, "
        f"{result.test}, Holm-adjusted p = {winner.p_adjusted:.2g}): the evidence wins",
    )


def check_choice(
    model: SelectorModel,
    table: pd.DataFrame,
    chosen: Any,
    candidates: pd.DataFrame,
    task_type: str,
) -> Override | None:
    """An Override when a row of ``candidates`` (measured-feasible) is significantly
    better than ``table.loc[chosen]``; None when the choice stands."""
    return evidence_override(paired_tests(model, table, chosen, candidates, task_type))


def hand_floor(
    table: pd.DataFrame,
    chosen: Any,
    candidates: pd.DataFrame,
    covariance: Callable[[Any, Any], float] | None = None,
) -> Override | None:
    """An Override to the best measured-feasible row (by its combined estimate: its
    measurement weighed against the prediction) unless ``table.loc[chosen]`` is estimated
    significantly better than it: one-sided z test of the difference of the two combined
    estimates, α = ``ALPHA``. The model's pick has to earn its place over what was
    measured, so the answer is never a guess that is merely not significantly worse than
    the evidence. A pick whose estimate rests mostly on measurements (the weight of its
    multilevel estimate, from the task type's measured configs, is at least
    ``EVIDENCE_WEIGHT``: :mod:`selection.shrinkage`) is not a guess and is not held to
    the floor: demanding significance there kept a measured config over a better one
    that the same measurements estimate, on most queries once the data were dense.

    The difference's variance is sd₁² + sd₂² − 2·cov: ``covariance(chosen, floor)`` is
    what the two estimates' errors share (both read from the same effects of the
    multilevel model: :mod:`selection.multilevel`); two configs that differ in one
    setting are compared on that setting's effect, not on the full uncertainty of each
    (treating them as independent made the test far too wide, and kept the measured
    config nearly always). None: independent.

    The floor is the best combined estimate, not the best raw measured mean: the highest
    of many means over a few cases is mostly the luckiest (it sits well above its true
    value), and holding every pick to it kept configs that were merely lucky."""
    if candidates.empty:
        return None
    floor = candidates["quality"].idxmax()
    if floor == chosen:
        return None
    if _finite(table.loc[chosen].get("quality_weight")) >= EVIDENCE_WEIGHT:
        return None
    row, best = table.loc[chosen], table.loc[floor]
    shared = _finite(covariance(chosen, floor)) if covariance is not None else 0.0
    sd_a, sd_b = _finite(row.get("quality_sd")), _finite(best.get("quality_sd"))
    spread = math.sqrt(max(sd_a**2 + sd_b**2 - 2 * shared, 0.0))
    gain = row["quality"] - best["quality"]
    if spread > 0 and gain / spread > NormalDist().inv_cdf(1 - ALPHA):
        return None
    return Override(
        floor,
        f"the best-estimated measured config that meets the limits by its measurements "
        f"(measured {quality(best['measured_quality_mean'])} on "
        f"{int(best['measured_n_cases'])} cases) is kept: the model's pick is not "
        f"estimated significantly better "
        f"({quality(row['quality'])} vs {quality(best['quality'])})",
    )


def uninformed(row: pd.Series) -> bool:
    """Whether a candidate's estimate is the model's guess and says nothing: mostly
    predicted (its weight below ``EVIDENCE_WEIGHT``) with a 90% interval that covers the
    whole quality scale (a newcomer's model, cross-validated error 126–151 points,
    predicted 29.6% [0.0–100.0%] for every config)."""
    return (
        _finite(row.get("quality_weight")) < EVIDENCE_WEIGHT
        and float(row.get("quality_low", 0.0)) <= 0.0
        and float(row.get("quality_high", 1.0)) >= 1.0
    )


def measured_over_guess(table: pd.DataFrame, chosen: Any) -> Any | None:
    """The best-estimated row of ``table`` (feasible candidates) whose estimate rests
    mostly on its measurement, where the pick ``table.loc[chosen]`` is :func:`uninformed`:
    a model that cannot place a config anywhere on the scale does not outrank what was
    measured, however few the cases (the floors above need ten generations and ample
    data; the newcomer's 8-case configs had neither). None where the pick is informed or
    nothing feasible was measured."""
    if not uninformed(table.loc[chosen]):
        return None
    weight = table.get("quality_weight", pd.Series(0.0, index=table.index)).fillna(0.0)
    measured = table[table["measured"].astype(bool) & (weight >= EVIDENCE_WEIGHT)]
    return None if measured.empty else measured["quality"].idxmax()


def _finite(value: Any) -> float:
    return float(value) if value is not None and np.isfinite(value) else 0.0


def measured_above(table: pd.DataFrame, chosen: Any, candidates: pd.DataFrame) -> Any | None:
    """The by-hand choice (the best measured mean among ``candidates``) where that mean is
    above the estimate of ``table.loc[chosen]``; else None. Where the task type's data are
    thin the pick is not held to it (the answer only says so): it is the highest of many
    means over about ten cases, mostly the luckiest, and holding the pick to it (as
    af21966 did, the pick kept only if estimated at least as high) cost 2.5 ± 1.0 points
    of limit-respecting hits over 42 units of the selector benchmark's own worlds at 1,000
    generations (``benchmarks/perf/results/issue50.md``)."""
    means = candidates["measured_quality_mean"].dropna()
    if means.empty or means.idxmax() == chosen:
        return None
    best = means.idxmax()
    return best if table.loc[chosen, "quality"] < means[best] else None
