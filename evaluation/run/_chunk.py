"""A chunk of work items that its lane starts one at a time, and whose items not started
yet an idle lane of another host can take (work stealing).

A chunk is cut for its host's pace, but a host can stop keeping it: one that accepts
connections and never answers held its whole chunk behind one request (up to the
request timeout, times the attempts) while the other hosts, done with their own work,
sat idle. So the lane starting an item claims it here, and a lane with nothing left to
take takes the unstarted tail of a running chunk of a model its host serves instead
(``evaluation.run._dispatch``). Both lanes run in one event loop; the lock keeps a claim
and a theft apart even from another thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

from evaluation.backends.retry import FailedAttempt
from evaluation.run._work import WorkItem, WorkKey


class Chunk(Sequence[WorkItem]):
    """The items a lane runs, in order; as a sequence, those still its own (started or
    not: what was taken away is not). ``earlier``: attempts of some of them that failed
    on a host that then went down (their records name them too)."""

    def __init__(
        self,
        items: Iterable[WorkItem],
        earlier: dict[WorkKey, tuple[FailedAttempt, ...]] | None = None,
    ) -> None:
        self.earlier = earlier or {}
        self._items = list(items)
        self._next = 0  # items before it are started
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):  # type: ignore[override]
        return self._items[index]

    def __iter__(self) -> Iterator[WorkItem]:
        return iter(list(self._items))

    def start_next(self) -> WorkItem | None:
        """The next item, now claimed by the lane running the chunk; None when none is
        left to it."""
        with self._lock:
            if self._next >= len(self._items):
                return None
            self._next += 1
            return self._items[self._next - 1]

    def unstarted(self) -> int:
        """Items not started yet, once the lane has started one: before that, its lane
        is only starting up (a Prefect task run's seconds, under load), not stuck."""
        with self._lock:
            return len(self._items) - self._next if self._next else 0

    def steal(self, count: int) -> list[WorkItem]:
        """The last ``count`` items not started yet (fewer if fewer are left), no longer
        this chunk's: the lane running it keeps those it will reach first."""
        with self._lock:
            left = len(self._items) - self._next
            cut = len(self._items) - max(0, min(count, left))
            taken, self._items = self._items[cut:], self._items[:cut]
            return taken

    def rest(self) -> list[WorkItem]:
        """Every item not started yet, no longer this chunk's (its host went down)."""
        with self._lock:
            taken, self._items = self._items[self._next :], self._items[: self._next]
            return taken

    def restart(self, skip: set[WorkKey]) -> None:
        """Start over with this chunk's items less those in ``skip`` (a task retried
        after a crash: those already stored)."""
        with self._lock:
            self._items = [item for item in self._items if item.key not in skip]
            self._next = 0


def as_chunk(items: Sequence[WorkItem]) -> Chunk:
    return items if isinstance(items, Chunk) else Chunk(items)
