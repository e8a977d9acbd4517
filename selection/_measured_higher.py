"""Why the pick stands where the by-hand choice was measured above it and the task type's
data are ample: its paired test on the cases both ran, and the two estimates.

Where the data are thin the answer says so (:func:`selection._notes.thin_data_note`).
Where they are ample the pick stood in silence: a newcomer's `recommend qa --max-latency
0.5` picked sim-large t=0 concise (measured 0.778 on 36 cases, p50 0.313 s) over
sim-large t=0.3 few_shot (0.861 on the same 36 cases, p50 0.307 s), both estimated
"0.760" (0.76047 vs 0.75976), and a reader of `show` got no reason. The pick does not
change: the paired test on the shared cases (:func:`selection._evidence_rule.paired_tests`)
is the evidence that may overrule it, and the estimates read every measured config
together and do not credit the highest of many means its luck
(``benchmarks/perf/results/issue50.md``). The note says both, the estimates to as many
figures as tell them apart and whether their difference is within its noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from evaluation.statistics.precision import fixed
from selection._candidates import params_label
from selection._choice import TIE_Z
from selection._evidence_rule import Paired, measured_above
from selection.quality_text import quality, quality_change


def measured_higher_note(
    table: pd.DataFrame,
    chosen: Any,
    by_hand: pd.DataFrame,
    tests: list[Paired],
    covariance: Callable[[Any, Any], float] | None,
) -> str | None:
    """The note for the by-hand choice (the best measured mean of ``by_hand``, the
    measured-feasible rows of ``table``) measured above the estimate of the pick
    ``table.loc[chosen]`` (:func:`selection._evidence_rule.measured_above`); ``tests``:
    the paired tests that let the pick stand; ``covariance``: what the two estimates'
    errors share (None: independent). None where no such config is."""
    hand = measured_above(table, chosen, by_hand)
    if hand is None:
        return None
    other, row = table.loc[hand], table.loc[chosen]
    text = f"{params_label(other)} meets the limits by its measurements and was measured higher"
    paired = next((t for t in tests if t.index == hand), None)
    if paired is not None:
        result = paired.result
        text += (
            f" than this pick on the {result.n_used} cases both ran ({quality(result.mean_a)} "
            f"vs {quality(result.mean_b)}, {quality_change(result.diff)}; {result.test}, "
            f"Holm-adjusted p = {paired.p_adjusted:.2g} over {paired.family} tested): not "
            "significantly, so the pick stands on the estimates"
        )
    else:
        text += (
            f" ({quality(other['measured_quality_mean'])} on "
            f"{int(other['measured_n_cases'])} cases) than this pick is estimated; the pick "
            "stands on the estimates"
        )
    ours, theirs = _apart(float(row["quality"]), float(other["quality"]))
    text += (
        ", which read every measured config together and do not credit the best of many "
        f"means its luck: {ours} for this pick, {theirs} for it"
    )
    return text + _within_noise(table, chosen, hand, covariance)


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with quality's 3 decimals, or up to 3 more where that writes them
    alike ("0.760" for both was a newcomer's 0.76047 and 0.75976)."""
    places = next((p for p in range(3, 7) if fixed(a, p) != fixed(b, p)), 3)
    return fixed(a, places), fixed(b, places)


def _within_noise(
    table: pd.DataFrame, chosen: Any, hand: Any, covariance: Callable[[Any, Any], float] | None
) -> str:
    """ ", a tie within their noise (…)" where the two estimates differ by less than
    ``TIE_Z`` standard deviations of their difference; "" where that is unknown."""
    sd_a = float(table.loc[chosen].get("quality_sd", math.nan))
    sd_b = float(table.loc[hand].get("quality_sd", math.nan))
    shared = float(covariance(chosen, hand)) if covariance is not None else 0.0
    spread = math.sqrt(max(sd_a**2 + sd_b**2 - 2 * shared, 0.0))
    if not math.isfinite(spread) or spread <= 0:
        return ""
    gap = abs(float(table.loc[chosen, "quality"]) - float(table.loc[hand, "quality"]))
    if gap >= TIE_Z * spread:
        return ""
    return (
        f", a tie within their noise (the difference {gap:.2g}, its standard deviation "
        f"{spread:.2g})"
    )
