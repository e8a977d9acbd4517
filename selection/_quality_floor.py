"""A quality floor (``min_quality``) refusing a config whose measured mean meets it: why,
in words. The floor is held to each candidate's estimate (its measurement read with the
task type's other measured configs, combined with the model's prediction, then corrected
for selection among the candidates: :mod:`selection._selection_bias`), never to the
measured mean. A newcomer's `recommend qa --min-quality 0.65 --max-latency 0.3` answered
that nothing met the limits although sim-medium measured 0.694 on 36 cases: its estimate,
0.677, corrected to 0.631, was below the floor, and the refusal read "estimated quality
0.631 < 0.650", nothing more. These words change no choice."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from evaluation.statistics.precision import told_apart
from selection.quality_text import quality

QUALITY_REASON = "estimated quality"
"""How a quality floor's refusal starts (``violations``)."""


def measured_above(row: pd.Series, min_quality: float) -> bool:
    """Whether ``row`` was measured on the task type at or above ``min_quality``."""
    mean = row.get("measured_quality_mean", math.nan)
    return bool(row.get("measured", False)) and pd.notna(mean) and float(mean) >= min_quality


def floor_refusal(row: pd.Series, min_quality: float, candidates: int) -> str:
    """A candidate's refusal by the quality floor: its estimate against the floor, and,
    where its measured mean meets the floor, the measurement, the estimate before the
    correction for selection among ``candidates`` and after it."""
    shown, bound = told_apart(float(row["quality"]), min_quality)  # 3 decimals, or more
    text = f"{QUALITY_REASON} {shown} < {bound}"
    if not measured_above(row, min_quality):
        return text
    before, corrected = _estimates(row)
    how = f"estimated {quality(before)} from it and the prediction"
    if corrected:
        after = quality(float(row["quality"]))
        how += f", {after} corrected for selection among {candidates} candidates"
    return f"{text} ({_measured(row)}; {how})"


def floor_note(
    table: pd.DataFrame,
    found: list[tuple[str, ...]],
    min_quality: float | None,
    label: Callable[[pd.Series], str],
) -> tuple[str, str] | None:
    """For an answer with nothing feasible: the configs whose one refusal is the quality
    floor though their measured mean meets it, said in the headline's words (what
    follows "no configuration is estimated to meet ...") and a note: the best measured
    of them (``label``: its label) with its figures, why the floor is held to the
    estimate, and the floor that admits it. None where there is none."""
    if min_quality is None:
        return None
    refused = [
        h
        for h, reasons in zip(table.index, found, strict=True)
        if len(reasons) == 1
        and reasons[0].startswith(QUALITY_REASON)
        and measured_above(table.loc[h], min_quality)
    ]
    if not refused:
        return None
    ranked = table.loc[refused].sort_values(
        ["measured_quality_mean", "quality"], ascending=False, kind="stable"
    )
    best, n = ranked.iloc[0], len(ranked)
    floor = quality(min_quality)
    headline = (
        f"{n} config{'s' * (n > 1)} measured at or above the quality floor "
        f"{'is' if n == 1 else 'are'} estimated below it (see the note)"
    )
    before, corrected = _estimates(best)
    how = (
        f"{quality(float(best['measured_quality_mean']))} read with the task type's other "
        f"measured configs and combined with the model's prediction is {quality(before)}"
    )
    if corrected:
        how += (
            f", and corrected for selection among {len(table)} candidates "
            f"{quality(float(best['quality']))} (the best of many configs measured on few "
            "cases each is partly the luckiest: such means run high)"
        )
    admits = math.floor(float(best["quality"]) * 1000) / 1000
    more = f" ({n - 1} more like it)" if n > 1 else ""
    note = (
        f"{label(best)} was {_measured(best)}, at or above quality ≥ {floor}, and meets the "
        f"other limits{more}, but a quality floor is held to each config's estimate, not its "
        f"measured mean: {how}. No option holds the floor to measured means; its estimate "
        f"as the floor, `--min-quality {admits:.3f}` (min_quality={admits:.3f} in Python), "
        "admits it"
    )
    return headline, note


def _measured(row: pd.Series) -> str:
    return (
        f"measured {quality(float(row['measured_quality_mean']))} on "
        f"{int(row['measured_n_cases'])} cases"
    )


def _estimates(row: pd.Series) -> tuple[float, bool]:
    """The estimate before the correction for selection, and whether the correction
    moved it."""
    before = float(row.get("quality_uncorrected", row["quality"]))
    moved = bool(row.get("selection_corrected", False)) and not math.isclose(
        before, float(row["quality"])
    )
    return before, moved
