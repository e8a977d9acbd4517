"""Progressive levels: which cases a run at ``smoke``, ``subset`` or ``full`` covers.

Each level is a set of cases; the generation key (config, case, sample) does the rest,
so a later level reuses every generation an earlier one made. ``subset`` is a prefix of
the race's stratified order (:mod:`.schedule`), so with the same seed a race starts on
the cases the subset level already generated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeVar

from evaluation.adaptive._schedule import stratified_order
from evaluation.run import WorkItem
from evaluation.suites import Case

Level = Literal["smoke", "subset", "full"]
LEVELS: tuple[Level, ...] = ("smoke", "subset", "full")
SMOKE_CASES = 3
SUBSET_SHARE = 0.2

C = TypeVar("C", bound=Case)
W = TypeVar("W", bound=WorkItem)


def level_cases(
    cases: Sequence[C],
    level: Level = "full",
    *,
    seed: int = 0,
    suite: str = "",
    smoke_cases: int = SMOKE_CASES,
    subset_share: float = SUBSET_SHARE,
    limit: int | None = None,
) -> list[C]:
    """The cases a level runs, in suite order: ``smoke`` the first ``smoke_cases``;
    ``subset`` a seeded sample stratified by case group, ``ceil(share × n)`` cases;
    ``full`` all. ``limit`` then keeps the first ``limit`` of them."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if level == "smoke":
        if smoke_cases < 1:
            raise ValueError(f"smoke cases must be at least 1, got {smoke_cases}")
        chosen = list(cases[:smoke_cases])
    elif level == "subset":
        if not 0 < subset_share <= 1:
            raise ValueError(f"subset share must be in (0, 1], got {subset_share}")
        order = stratified_order(
            [c.id for c in cases], [c.group for c in cases], seed=seed, suite=suite
        )
        keep = set(order[: math.ceil(subset_share * len(cases))])
        chosen = [c for c in cases if c.id in keep]
    else:
        chosen = list(cases)
    return chosen if limit is None else chosen[:limit]


def level_work(items: Sequence[W], cases: Sequence[Case]) -> list[W]:
    """The work items on the level's cases."""
    ids = {c.id for c in cases}
    return [item for item in items if item.case.id in ids]
