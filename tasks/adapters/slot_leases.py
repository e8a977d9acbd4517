"""The slots a run holds, as ``HostSlots`` keeps them: one slot (``_Lease``), the write
that took it with others (``_Grant``: a Prefect lease of several, or a count on the
embedded server), and the writes that give held slots back (``_groups``: one per limit
by count, else one per lease)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from tasks.adapters.slot_holders import Held


@dataclass(frozen=True)
class _Lease:
    """One slot of a limit that this run holds: ``id`` names it in the run's holder
    file; ``grant``, when set, is the write that took it with others (``_Grant``)."""

    id: str
    limit: str
    grant: str = ""

    @property
    def grant_id(self) -> str:
        return self.grant or self.id


@dataclass
class _Grant:
    """The slots one write took: ``slots`` of ``limit`` under ``id``, a Prefect lease
    (``leased``: given back whole) or, on the embedded server, a name in the holder file
    (given back by count, slot by slot; ``slots`` is then how many are left)."""

    id: str
    limit: str
    slots: int
    leased: bool
    idle: set[str] = field(default_factory=set)  # a lease's slots the run stopped using


@dataclass
class _Unsent:
    """Slots of a limit to give back by count in one write that waits for its turn
    (``HostSlots._give_back_counted``): others given back meanwhile join it; ``sent``
    is done once the write is."""

    slots: list[Held]
    sent: asyncio.Future[None]


@dataclass
class _Takes:
    """One-slot takes of a limit by count, sent in one write once it is the run's turn
    (``HostSlots._take_counted``): lanes asking meanwhile join it; ``sent`` once its
    count is decided, each lane's future then given its slot or why none."""

    waiting: list[asyncio.Future] = field(default_factory=list)
    sent: bool = False


def _groups(held: Iterable[Held], *, by_count: bool) -> dict[str, list[Held]]:
    """Slots to give back, one write per group: per limit by count, else per lease."""
    groups: dict[str, list[Held]] = defaultdict(list)
    for slot in held:
        groups[slot.limit if by_count else slot.grant].append(slot)
    return groups


def _give_back_call(client, key: str, group: list[Held], *, by_count: bool):
    """The write that gives back ``group`` (``_groups``), on a sync or async client."""
    if by_count:
        return client.release_concurrency_slots(
            names=[key], slots=len(group), occupancy_seconds=1.0
        )
    return client.release_concurrency_slots_with_lease(key)
