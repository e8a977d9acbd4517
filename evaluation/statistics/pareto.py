"""Pareto front of quality against a cost (latency p95, energy per generation).

A config is dominated when another is at least as good on both quality and cost and
strictly better on one; the front is the configs nothing dominates. Configs with exactly
equal quality and cost are both kept. Where every config ties on quality (exact_match 0
for all), the front is only the cheapest config: it says nothing of quality, and
``pareto_fronts`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_COSTS = ("latency_p95_s", "energy_j")


@dataclass(frozen=True)
class ParetoFront:
    """Front configs in increasing cost, with their (quality, cost)."""

    quality: str
    cost: str
    higher_is_better: bool
    points: tuple[tuple[str, float, float], ...]
    excluded: tuple[str, ...] = ()
    note: str = ""
    ties: bool = False  # two configs or more, every one of the same quality

    @property
    def configs(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.points)


def pareto_front(
    facts: pd.DataFrame,
    *,
    quality: str = "quality",
    cost: str = "latency_p95_s",
    higher_is_better: bool = True,
) -> ParetoFront:
    """Configs no other config beats on both quality and ``cost`` (lower cost is better).
    Rows with a missing quality or cost are left out and listed in ``excluded``."""
    for column in ("config", quality, cost):
        if column not in facts.columns:
            raise ValueError(f"config facts lack column {column!r}")
    q = pd.to_numeric(facts[quality], errors="coerce").to_numpy(dtype=float)
    c = pd.to_numeric(facts[cost], errors="coerce").to_numpy(dtype=float)
    names = facts["config"].astype(str).to_numpy()
    ok = ~(np.isnan(q) | np.isnan(c))
    excluded = tuple(names[~ok])
    notes = []
    if unmeasured := tuple(names[np.isnan(c)]):  # a cost not measured: placed nowhere
        notes.append(f"{cost} not measured for {', '.join(unmeasured)}: left off the front")
    if unscored := tuple(names[np.isnan(q) & ~np.isnan(c)]):
        notes.append(f"{len(unscored)} config(s) without {quality} left out")
    note = "; ".join(notes)
    q, c, names = q[ok], c[ok], names[ok]
    if names.size == 0:
        return ParetoFront(
            quality,
            cost,
            higher_is_better,
            (),
            excluded,
            f"no config has both {quality} and {cost}: front undefined",
        )
    good = q if higher_is_better else -q
    # dominated[i]: some j is ≥ on quality, ≤ on cost, and strictly better on one.
    no_worse = (good[None, :] >= good[:, None]) & (c[None, :] <= c[:, None])
    better = (good[None, :] > good[:, None]) | (c[None, :] < c[:, None])
    dominated = (no_worse & better).any(axis=1)
    order = np.lexsort((-good[~dominated], c[~dominated]))
    front = [
        (str(n), float(qq), float(cc))
        for n, qq, cc in zip(
            names[~dominated][order], q[~dominated][order], c[~dominated][order], strict=True
        )
    ]
    ties = names.size > 1 and bool(np.isclose(q, q[0], rtol=1e-12, atol=1e-12).all())
    return ParetoFront(quality, cost, higher_is_better, tuple(front), excluded, note, ties)


def pareto_fronts(
    facts: pd.DataFrame,
    *,
    quality: str = "quality",
    higher_is_better: bool = True,
    costs: Sequence[str] = DEFAULT_COSTS,
) -> list[ParetoFront]:
    """One front per cost column that is present and recorded for at least one config
    (energy is often not recorded); none where every config ties on ``quality`` (its
    front would be the cheapest config, named "on the front" of a metric that tells the
    configs nothing apart; the verdict says they tie)."""
    fronts = [
        pareto_front(facts, quality=quality, cost=cost, higher_is_better=higher_is_better)
        for cost in costs
        if cost in facts.columns and pd.to_numeric(facts[cost], errors="coerce").notna().any()
    ]
    return [f for f in fronts if not f.ties]
