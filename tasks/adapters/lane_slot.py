"""One lane's hold on a host slot for one chunk (``HostSlots.lane``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from tasks.adapters.slot_leases import _Lease

if TYPE_CHECKING:
    from evaluation.run._slot_waits import LaneWatch
    from tasks.adapters.host_slots import HostSlots


class _Unwatched:
    """A lane nobody watches."""

    def waits(self) -> None: ...

    def holds(self) -> None: ...

    def holds_none(self) -> None: ...


_UNWATCHED = _Unwatched()


class LaneSlot:
    """One lane's hold on a host slot for one chunk.

    The slot is taken before an HTTP attempt and kept while the lane goes straight on to
    its next request; it is given back as soon as an attempt fails (so it is never held
    through a retry wait). When the chunk ends it is parked for the lane's next chunk.
    Before a request and at the chunk's end, a slot whose turn is over goes to another
    run waiting for one (``HostSlots.turn_due``; the runs on one host take turns).
    Taking and giving back a slot around every request costs two API writes per
    generation, which on the embedded SQLite server dominated a sweep
    (benchmarks/perf/sweep_throughput.py).

    ``watch`` is told when the lane waits for a slot, holds one and holds none (the run
    counts its requests as sent only while it holds one, and says a lasting wait:
    ``evaluation.run._slot_waits``).
    """

    def __init__(self, slots: HostSlots, host: str, watch: LaneWatch | None = None) -> None:
        self._slots = slots
        self._host = host
        self._watch = watch or _UNWATCHED
        self._lease: _Lease | None = None

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        if self._lease is not None and self._slots.turn_due(self._host, self._lease):
            await self._hand_over(self._lease)  # another run's turn: this lane waits
        if self._lease is None or not self._slots.still_held(self._lease):
            self._lease = await self._take()
        try:
            yield
        except BaseException:
            await self.release()
            raise

    async def _take(self) -> _Lease:
        lease = self._slots.take_parked(self._host)
        if lease is None:
            self._watch.waits()
            try:
                lease = await self._slots.take(self._host)
            except BaseException:
                self._watch.holds_none()
                raise
        self._watch.holds()
        return lease

    async def _hand_over(self, lease: _Lease) -> None:
        self._lease = None
        self._watch.holds_none()
        await self._slots.hand_over(self._host, lease)

    async def release(self) -> None:
        """Give the slot back now (an attempt failed)."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            self._watch.holds_none()
            await self._slots.release(lease)

    def lend(self, to: Callable[[str, _Lease], bool]) -> None:
        """The lane's case has no call for the slot now: hand it ``to`` the run's spare
        slots for a call waiting for one (False: nobody waits, the lane keeps it). The
        lane's next call then waits for a slot as a lane does, ahead of spare calls."""
        if self._lease is not None and to(self._host, self._lease):
            self._lease = None
            self._watch.holds_none()

    def finish(self) -> None:
        """The chunk is over: park the slot for the lane's next chunk, or hand it to
        another run waiting for one (``HostSlots.chunk_over``)."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            self._watch.holds_none()
            self._slots.chunk_over(self._host, lease)
