"""Which candidates estimated better than the pick, refused by the limits, the answer names
after the best of them (``excluded_best``), and in what order.

Taken by estimated quality alone, the few it names were the far misses a reader dismisses
at a glance: a newcomer's demo at `--max-latency 0.25` named three sim-large configs
(p95 about 0.45 s) and sim-medium t=0 concise, and never sim-medium t=0.7 concise, which
`show` lists at p95 0.246 s and measured 0.667 against the pick's 0.556 (its p95 with
margin, 0.257 s, refused it). Named first are the near misses, the configs a reader would
take by hand: each limit met by the candidate's own measurement (as
:func:`selection._evidence_rule.measured_feasible` reads one) or by its estimate, so that
only the margin or the tail bound refuses it; those measured within the limits first,
by their measured quality as `show` ranks them, then those estimated within them, then
the rest, each by estimated quality. The answer counts those it leaves out.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from selection._evidence_rule import MIN_GENERATIONS, measured_feasible


def named_refused(
    better: pd.DataFrame,
    max_latency_s: float | None,
    max_energy_j: float | None,
    min_quality: float | None,
    most: int,
) -> tuple[list[Any], int]:
    """Up to ``most`` rows of ``better`` (the refused candidates estimated better than
    the pick, the best left out) in the order the answer names them (the module
    docstring), and how many it leaves out."""
    ranked = better.sort_values("quality", ascending=False)
    near = ranked[_within_before_margin(ranked, max_latency_s, max_energy_j, min_quality)]
    by_hand = measured_feasible(near, max_latency_s, min_quality)
    by_hand = by_hand.sort_values(["measured_quality_mean", "quality"], ascending=False)
    order = list(dict.fromkeys([*by_hand.index, *near.index, *ranked.index]))
    return order[:most], max(0, len(order) - most)


def _within_before_margin(
    table: pd.DataFrame,
    max_latency_s: float | None,
    max_energy_j: float | None,
    min_quality: float | None,
) -> pd.Series:
    """Per row, whether each limit set is met by its measurement (latency p95, quality,
    over at least ``MIN_GENERATIONS`` calls) or by its estimate (energy: its estimate)."""
    measured = table["measured_n"].fillna(0) >= MIN_GENERATIONS
    keep = pd.Series(True, index=table.index)
    if max_latency_s is not None:
        keep &= (table["latency_p95"] <= max_latency_s) | (
            measured & (table["measured_latency_p95"] <= max_latency_s)
        )
    if max_energy_j is not None:
        keep &= table.get("energy_j", pd.Series(float("nan"), index=table.index)) <= max_energy_j
    if min_quality is not None:
        keep &= (table["quality"] >= min_quality) | (
            measured & (table["measured_quality_mean"] >= min_quality)
        )
    return keep.fillna(False).astype(bool)
