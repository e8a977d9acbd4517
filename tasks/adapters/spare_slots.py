"""Spare host slots for a pipeline's parallel calls (``evaluation.run._pipelines``).

A case runs in a lane that holds one slot of its host. When the case's pipeline makes
calls at once (parallel maps, sections, embedding batches), each further call takes a
slot that is free right now on a live host serving its model, or waits for one: a host
never gets more requests than its slots, however the lanes and pipelines overlap.

Waiting calls queue here, first come first served, across every case of the run. A spare
slot given back goes to a lane of the run waiting for its host if there is one (its
case cannot start without it), else straight to the first waiting call its host serves
(no API call, no idle time); with nobody waiting it is parked in ``HostSlots`` for a
lane's next chunk. A slot parked while calls wait (a lane's chunk ended) goes to the
first of them at once, and a lane's slot its case has no call for is lent the same way
(``lend``): the lane's next call waits for a slot as a lane does, ahead of spare calls.
While calls wait, one poller looks for slots that came free elsewhere: slots parked by
lanes whose chunk ended (free to take), then the hosts' limits: an API write each, so a
host is not asked while this run holds all its slots (its own calls give them back
here), nor again for ``FULL_BACKOFF_S`` after it was found full, nor by two calls at
once. Asking a full limit every 0.2 s while a long map waited cost a Prefect API write
(and its server's database write, on the same cores) five times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.spec import HostSpec
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_leases import _Lease

FULL_BACKOFF_S = 0.2  # a host found full is not asked again sooner (each ask is an API write)
POLL_S = 0.05  # while calls wait: how often to look for slots that came free elsewhere


@dataclass
class _Spare:
    host: str
    lease: _Lease
    pool: PoolSpareSlots

    async def release(self) -> None:
        """To the first call waiting for a slot of this host, else parked for a lane."""
        self.pool.give_back(self)


class PoolSpareSlots:
    """``SpareSlots`` over the hosts' concurrency limits (``HostSlots``)."""

    def __init__(self, slots: HostSlots, hosts: Sequence[HostSpec]) -> None:
        self._slots = slots
        self._hosts = {host.name: host for host in hosts}
        self._full_until: dict[str, float] = {}
        self._waiting: deque[tuple[str, asyncio.Future]] = deque()
        self._poller: asyncio.Task | None = None
        self._maybe_free = asyncio.Event()  # wakes the poller before its next round
        slots.on_parked(self._hand_parked)

    async def try_take(self, model: str) -> _Spare | None:
        """A slot free now on a host serving ``model``: a parked one first, then one
        asked of a host's limit (unless it was found full within ``FULL_BACKOFF_S``)."""
        serving = [
            host.name
            for host in self._hosts.values()
            if host.serves(model) and not self._slots.lanes_waiting(host.name)
        ]  # a host with a lane of the run waiting: its free slots are the lane's
        for host in serving:
            lease = self._slots.take_parked(host)
            if lease is not None:
                return _Spare(host, lease, self)
        loop = asyncio.get_running_loop()
        for host in serving:
            if self._full_until.get(host, 0.0) > loop.time():
                continue
            if self._slots.held(host) >= self._hosts[host].slots:
                continue  # every slot is this run's: one comes back through give_back
            self._full_until[host] = float("inf")  # asked now: no other call asks too
            try:
                lease = await self._slots.try_take(host)
            finally:
                self._full_until[host] = loop.time() + FULL_BACKOFF_S
            if lease is not None:
                self._full_until[host] = 0.0
                self._maybe_free.set()  # the host had one free: it may have more
                return _Spare(host, lease, self)
        return None

    def wait_for(self, model: str, grant: asyncio.Future) -> None:
        """Fill ``grant`` with a spare slot for ``model`` when one comes free; a grant
        done meanwhile (cancelled, or filled by the case's own lane) is passed over."""
        self._waiting.append((model, grant))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())

    def give_back(self, spare: _Spare) -> None:
        if self._slots.lanes_waiting(spare.host):  # a lane first: its case cannot start
            self._slots.park(spare.host, spare.lease)
            return
        entry = self._first_waiting(spare.host)
        if entry is not None:
            self._waiting.remove(entry)
            entry[1].set_result(spare)
            return
        self._drop_done()
        self._slots.park(spare.host, spare.lease)

    def _hand_parked(self, host_name: str) -> None:
        """A slot of ``host_name`` was parked (a lane's chunk ended, or a spare came
        back with nobody waiting): to the first call waiting for a model the host
        serves, at once, unless a lane of the run waits for the host (its case cannot
        start without it). Left parked, it sat idle until the poller's next round
        while the lane's next chunk task started (20-80 ms a chunk, measured with
        benchmarks/perf/pipeline_throughput.py --timeline), and a new call's
        ``try_take`` took it before calls that had waited longer."""
        if self._slots.lanes_waiting(host_name) or self._first_waiting(host_name) is None:
            return
        lease = self._slots.take_parked(host_name)
        if lease is not None:
            self.give_back(_Spare(host_name, lease, self))

    def lend(self, host_name: str, lease: _Lease) -> bool:
        """A lane's slot its case has no call for now: to a lane of the run waiting
        for the host (parked for it), else to the first call waiting for a model the
        host serves; False when nobody waits (the lane keeps it)."""
        if not self._slots.lanes_waiting(host_name) and self._first_waiting(host_name) is None:
            return False
        self.give_back(_Spare(host_name, lease, self))
        return True

    def _first_waiting(self, host_name: str) -> tuple[str, asyncio.Future] | None:
        """The first call waiting for a model ``host_name`` serves, if any."""
        host = self._hosts.get(host_name)
        if host is None:
            return None
        for entry in self._waiting:
            model, grant = entry
            if not grant.done() and host.serves(model):
                return entry
        return None

    async def _poll(self) -> None:
        """While calls wait: find slots that came free elsewhere, for each model waited
        for in turn, and hand them out as given back. An error asking for one (the
        Prefect API failing) fails the waiting calls with it."""
        try:
            await self._find_free()
        except Exception as exc:
            for _, grant in self._waiting:
                if not grant.done():
                    grant.set_exception(exc)
            self._waiting.clear()

    async def _find_free(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._maybe_free.wait(), POLL_S)
            self._maybe_free.clear()
            self._drop_done()
            if not self._waiting:
                return
            for model in dict.fromkeys(model for model, _ in self._waiting):
                while self._waits_for(model):
                    spare = await self.try_take(model)
                    if spare is None:
                        break
                    self.give_back(spare)

    def _waits_for(self, model: str) -> bool:
        return any(m == model and not grant.done() for m, grant in self._waiting)

    def _drop_done(self) -> None:
        while self._waiting and self._waiting[0][1].done():
            self._waiting.popleft()
        if any(grant.done() for _, grant in self._waiting):
            self._waiting = deque(e for e in self._waiting if not e[1].done())
