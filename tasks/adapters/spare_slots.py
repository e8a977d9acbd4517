"""Spare host slots for a pipeline's parallel calls (``evaluation.run._pipelines``).

A case runs in a lane that holds one slot of its host. When the case's pipeline makes
calls at once (parallel maps, sections, embedding batches), each further call takes a
slot that is free right now on a live host serving its model, or waits for one: a host
never gets more requests than its slots, however the lanes and pipelines overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.spec import HostSpec
from tasks.adapters.prefect_concurrency import HostSlots, _Lease

FULL_BACKOFF_S = 0.2  # a host found full is not asked again sooner (each ask is an API write)


@dataclass
class _Spare:
    host: str
    lease: _Lease
    slots: HostSlots

    async def release(self) -> None:
        """Parked, not released: a lane or call taking a slot next reuses it."""
        self.slots.park(self.host, self.lease)


class PoolSpareSlots:
    """``SpareSlots`` over the hosts' concurrency limits (``HostSlots``)."""

    def __init__(self, slots: HostSlots, hosts: Sequence[HostSpec]) -> None:
        self._slots = slots
        self._hosts = tuple(hosts)
        self._full_until: dict[str, float] = {}

    async def try_take(self, model: str) -> _Spare | None:
        loop = asyncio.get_running_loop()
        for host in self._hosts:
            if not host.serves(model) or self._full_until.get(host.name, 0.0) > loop.time():
                continue
            lease = await self._slots.try_take(host.name)
            if lease is not None:
                return _Spare(host.name, lease, self._slots)
            self._full_until[host.name] = loop.time() + FULL_BACKOFF_S
        return None
