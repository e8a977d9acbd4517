"""How a sweep spends its generations: the whole grid, or a race (``strategy: race``)
that drops configs once they have significantly lost (evaluation/adaptive/)::

    strategy: race        # "full" (default) or "race"
    delta: 0.01           # race only: the smallest difference worth knowing, >= 0
    budget: 2000          # race only: the most generations it may use, >= 1 (default none)
    max_latency_s: 2.0    # race only: drop configs whose p95 latency is significantly above

No energy limit: a run measures energy per config over its generation spans (NVML,
evaluation/run/_gpu.py) once generation ends, not per generation, so a race's rounds
have nothing to test it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from evaluation.spec._fields import FieldReader, shown

StrategyName = Literal["full", "race"]
STRATEGIES: tuple[StrategyName, ...] = ("full", "race")
LIMIT_KEYS = {"max_latency_s": "latency_s"}
"""A race's limit fields and the per-generation measure each bounds at its p95."""
STRATEGY_KEYS = ("strategy", "delta", "budget", *LIMIT_KEYS)
DEFAULT_DELTA = 0.01


@dataclass(frozen=True)
class Strategy:
    name: StrategyName = "full"
    delta: float = DEFAULT_DELTA
    budget: int | None = None
    max_latency_s: float | None = None

    @property
    def race(self) -> bool:
        return self.name == "race"

    @property
    def limits(self) -> dict[str, float]:
        """The race's limits by the generation measure they bound (e.g. "latency_s")."""
        return {
            measure: value
            for key, measure in LIMIT_KEYS.items()
            if (value := getattr(self, key)) is not None
        }


def read_strategy(reader: FieldReader, data: dict[str, Any]) -> Strategy:
    """The spec's strategy fields, validated (delta, budget and limits belong to a race)."""
    name = data.get("strategy", "full")
    reader.check(
        name in STRATEGIES,
        "strategy",
        f"expected one of {', '.join(STRATEGIES)}, got {shown(name)}",
    )
    if name != "race":
        for key in STRATEGY_KEYS[1:]:
            reader.check(key not in data, key, "applies only to strategy: race")
        return Strategy()
    delta = DEFAULT_DELTA
    if data.get("delta") is not None:
        delta = reader.number(data["delta"], "delta")
        reader.check(0 <= delta < 1, "delta", f"must be in [0, 1), got {delta:g}")
    budget = None
    if data.get("budget") is not None:
        budget = reader.bounded(data["budget"], "budget", "budget")
    limits: dict[str, float] = {}
    for key in LIMIT_KEYS:
        if data.get(key) is not None:
            limits[key] = reader.bounded(data[key], key, key, float)
    return Strategy("race", delta, budget, **limits)
