"""How a sweep spends its generations: the whole grid, or a race (``strategy: race``)
that drops configs once they have significantly lost (evaluation/adaptive/)::

    strategy: race        # "full" (default) or "race"
    delta: 0.01           # race only: the smallest difference worth knowing, >= 0
    budget: 2000          # race only: the most generations it may use, >= 1 (default none)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from evaluation.spec._fields import FieldReader

StrategyName = Literal["full", "race"]
STRATEGIES: tuple[StrategyName, ...] = ("full", "race")
STRATEGY_KEYS = ("strategy", "delta", "budget")
DEFAULT_DELTA = 0.01


@dataclass(frozen=True)
class Strategy:
    name: StrategyName = "full"
    delta: float = DEFAULT_DELTA
    budget: int | None = None

    @property
    def race(self) -> bool:
        return self.name == "race"


def read_strategy(reader: FieldReader, data: dict[str, Any]) -> Strategy:
    """The spec's strategy fields, validated (delta and budget belong to a race)."""
    name = data.get("strategy", "full")
    reader.check(
        name in STRATEGIES,
        "strategy",
        f"expected one of {', '.join(STRATEGIES)}, got {name!r}",
    )
    if name != "race":
        for key in ("delta", "budget"):
            reader.check(key not in data, key, "applies only to strategy: race")
        return Strategy()
    delta = DEFAULT_DELTA
    if data.get("delta") is not None:
        delta = reader.number(data["delta"], "delta")
        reader.check(0 <= delta < 1, "delta", f"must be in [0, 1), got {delta:g}")
    budget = None
    if data.get("budget") is not None:
        budget = reader.integer(data["budget"], "budget")
        reader.check(budget >= 1, "budget", f"must be >= 1 generation, got {budget}")
    return Strategy("race", delta, budget)
