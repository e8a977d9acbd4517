"""Simulated time for a case's calls on the simulated backend: each call's simulated
latency laid over the host's slots, so a pipeline's latency has its real shape (parallel
calls overlap, sequential ones add up, more calls than slots queue) without sleeping.

Each task running a case's calls carries its own "now" (a context variable): a call
made after another one in the same task starts no earlier than that one ended; calls
made at once (``all_of``) start together and the caller goes on when the last ends.
A call takes the slot that is free first (the host's slots, as if the case had the host
to itself: the shape of one case, not the queueing between cases).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

_now: ContextVar[float] = ContextVar("simulated_now", default=0.0)


def simulated_now() -> float:
    """The calling task's simulated time (seconds from the case's start)."""
    return _now.get()


def caught_up(ends: Iterable[float]) -> None:
    """The calling task goes on once the calls it made at once have ended."""
    _now.set(max([_now.get(), *ends]))


@dataclass(frozen=True)
class SimulatedSpan:
    issued_s: float
    start_s: float
    end_s: float


class SimulatedTimeline:
    """One case's simulated calls over ``slots`` slots; ``end_s``: when the last ended."""

    def __init__(self, slots: int) -> None:
        self._free = [0.0] * max(1, slots)
        self.end_s = 0.0
        self._token = _now.set(0.0)

    def lay(self, latency_s: float) -> SimulatedSpan:
        """A call of ``latency_s`` made now by the calling task; its task's "now" moves
        to the call's end."""
        issued = _now.get()
        start = max(issued, heapq.heappop(self._free))
        end = start + latency_s
        heapq.heappush(self._free, end)
        _now.set(end)
        self.end_s = max(self.end_s, end)
        return SimulatedSpan(issued, start, end)

    def close(self) -> None:
        """Back to the caller's "now" (the case is over)."""
        _now.reset(self._token)
