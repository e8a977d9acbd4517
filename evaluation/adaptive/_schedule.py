"""The order in which a race (and the subset level) draws a suite's cases.

One seeded, group-stratified permutation of the suite: cases are shuffled within each
group and the groups interleaved by position (systematic sampling), so every prefix of
the order is close to a stratified sample. Rounds are prefixes that grow geometrically.
The order depends only on (seed, suite name, case ids and groups): a rerun after a crash
recomputes the same rounds from nothing but the spec.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FIRST_ROUND = 20
GROWTH = 1.5


def seeded_rng(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded from the sha256 of ``parts`` (not Python's salted hash)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def stratified_order(
    case_ids: Sequence[str], groups: Sequence[str | None], *, seed: int, suite: str
) -> tuple[str, ...]:
    """All case ids, shuffled within each group, then interleaved: the j-th of a group's
    n cases sits at (j + u)/n with u uniform, so a group's cases are spread evenly over
    the order. A case without a group is a group of its own (a uniform position)."""
    if len(case_ids) != len(groups):
        raise ValueError(f"{len(case_ids)} case ids but {len(groups)} groups")
    if len(set(case_ids)) != len(case_ids):
        raise ValueError("case ids must be unique")
    rng = seeded_rng("race-order", seed, suite)
    members: dict[str, list[str]] = {}
    for case, group in zip(case_ids, groups, strict=True):
        members.setdefault(f"g:{group}" if group is not None else f"c:{case}", []).append(case)
    keyed: list[tuple[float, float, str]] = []
    for key in sorted(members):
        cases = sorted(members[key])
        shuffled = [cases[i] for i in rng.permutation(len(cases))]
        for j, case in enumerate(shuffled):
            keyed.append(((j + rng.random()) / len(cases), rng.random(), case))
    return tuple(case for _, _, case in sorted(keyed))


def round_ends(
    n_cases: int, *, first: int = FIRST_ROUND, growth: float = GROWTH
) -> tuple[int, ...]:
    """Cumulative cases after each round: ``first``, then ×``growth`` (rounded up), the
    last one the whole suite. 300 cases: 20, 30, 45, 68, 102, 153, 230, 300."""
    if n_cases < 1:
        raise ValueError("a race needs at least one case")
    if first < 2 or growth <= 1:
        raise ValueError(f"need first >= 2 and growth > 1, got {first} and {growth}")
    ends = [min(first, n_cases)]
    while ends[-1] < n_cases:
        ends.append(min(n_cases, max(ends[-1] + 1, math.ceil(ends[-1] * growth))))
    return tuple(ends)


@dataclass(frozen=True)
class RaceSchedule:
    """The case order and where each round ends (cumulative counts into ``order``)."""

    order: tuple[str, ...]
    ends: tuple[int, ...]

    @property
    def n_rounds(self) -> int:
        return len(self.ends)

    def round_cases(self, index: int) -> tuple[str, ...]:
        """The cases that round ``index`` (0-based) adds."""
        start = 0 if index == 0 else self.ends[index - 1]
        return self.order[start : self.ends[index]]


def race_schedule(
    case_ids: Sequence[str],
    groups: Sequence[str | None],
    *,
    seed: int,
    suite: str,
    first: int = FIRST_ROUND,
    growth: float = GROWTH,
) -> RaceSchedule:
    """The schedule of a race over a suite (see the module docstring)."""
    order = stratified_order(case_ids, groups, seed=seed, suite=suite)
    return RaceSchedule(order, round_ends(len(order), first=first, growth=growth))
