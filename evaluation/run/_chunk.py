"""A chunk of work items that its lane starts one at a time, and whose items not started
yet an idle lane of another host can take (work stealing).

A chunk is cut for its host's pace, but a host can stop keeping it: one that accepts
connections and never answers held its whole chunk behind one request (up to the
request timeout, times the attempts) while the other hosts, done with their own work,
sat idle; and under load a lane can wait seconds to start its chunk while the lanes of
its own host, their work done, idle beside it (256 slots x 50 ms: the last ~1,151 items
ran in waves after gaps with no request open). So the lane starting an item claims it
here, and a lane with nothing left to take takes the unstarted tail of a running chunk
of a model its host serves instead, or the unstarted part of an overdue chunk of any
host's, its own included (``evaluation.run._dispatch``).

Where the chunk stands (``Cursor``: items before ``next`` started, items before ``stop``
its own) is two numbers behind a lock: in this process by default, or a cell of memory
shared with a lane worker process (``evaluation.run._workers``), so that the worker's
claims and the dispatcher's thefts stay apart across processes: both sides hold the
same item list, and only these two numbers change while the chunk runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from contextlib import AbstractContextManager

from evaluation.backends.retry import FailedAttempt
from evaluation.run._work import WorkItem, WorkKey


class Cursor:
    """``next`` and ``stop`` of one chunk: ``cells[2 * at]`` and ``cells[2 * at + 1]``
    under ``lock`` (a list and a thread lock here; shared memory and a process lock for
    a lane worker's seat)."""

    __slots__ = ("_at", "_cells", "lock")

    def __init__(
        self,
        cells: MutableSequence[int] | None = None,
        at: int = 0,
        lock: AbstractContextManager | None = None,
    ) -> None:
        self._cells = cells if cells is not None else [0, 0]
        self._at = 2 * at
        self.lock = lock if lock is not None else threading.Lock()

    def get(self) -> tuple[int, int]:
        """(next, stop); the caller holds ``lock``."""
        return self._cells[self._at], self._cells[self._at + 1]

    def set(self, next_: int, stop: int) -> None:
        """The caller holds ``lock``."""
        self._cells[self._at], self._cells[self._at + 1] = next_, stop


class Chunk(Sequence[WorkItem]):
    """The items a lane runs, in order; as a sequence, those still its own (started or
    not: what was taken away is not). ``earlier``: attempts of some of them that failed
    on a host that then went down (their records name them too). ``cursor``: where a
    lane worker's copy of the chunk stands (set by the dispatching side, not reset)."""

    def __init__(
        self,
        items: Iterable[WorkItem],
        earlier: dict[WorkKey, tuple[FailedAttempt, ...]] | None = None,
        *,
        cursor: Cursor | None = None,
    ) -> None:
        self.earlier = earlier or {}
        self._items = list(items)
        if cursor is None:
            cursor = Cursor()
            cursor.set(0, len(self._items))
        self._cursor = cursor

    def _own(self) -> list[WorkItem]:
        with self._cursor.lock:
            _, stop = self._cursor.get()
        return self._items[:stop]

    def __len__(self) -> int:
        with self._cursor.lock:
            return self._cursor.get()[1]

    def __getitem__(self, index):  # type: ignore[override]
        return self._own()[index]

    def __iter__(self) -> Iterator[WorkItem]:
        return iter(self._own())

    @property
    def items(self) -> list[WorkItem]:
        """Every item it was cut with (a lane worker's copy is made of these)."""
        return self._items

    def start_next(self) -> WorkItem | None:
        """The next item, now claimed by the lane running the chunk; None when none is
        left to it."""
        with self._cursor.lock:
            next_, stop = self._cursor.get()
            if next_ >= stop:
                return None
            self._cursor.set(next_ + 1, stop)
        return self._items[next_]

    def unstarted(self) -> int:
        """Items not started yet, once the lane has started one: before that, its lane
        may be only starting up (a seat in a lane worker, its host slot), not stuck; such
        a chunk is taken from only once overdue (``steal_overdue``)."""
        with self._cursor.lock:
            next_, stop = self._cursor.get()
        return stop - next_ if next_ else 0

    def steal(self, count: int) -> list[WorkItem]:
        """The last ``count`` items not started yet (fewer if fewer are left), no longer
        this chunk's: the lane running it keeps those it will reach first."""
        with self._cursor.lock:
            next_, stop = self._cursor.get()
            cut = stop - max(0, min(count, stop - next_))
            self._cursor.set(next_, cut)
        return self._items[cut:stop]

    def steal_overdue(self, *, started: bool) -> list[WorkItem]:
        """Items of a chunk its lane is behind on (``_dispatch.OVERDUE_MARGIN_S``), no
        longer this chunk's: all but the first when the lane has started none (it keeps
        the one it will start), else, where ``started``, the last half (rounded down) of
        those not started yet; decided under the lock, so the lane's claims and this
        take never meet on an item."""
        with self._cursor.lock:
            next_, stop = self._cursor.get()
            if next_ == 0:
                cut = min(1, stop)
            elif started:
                cut = stop - (stop - next_) // 2
            else:
                cut = stop
            self._cursor.set(next_, cut)
        return self._items[cut:stop]

    def rest(self) -> list[WorkItem]:
        """Every item not started yet, no longer this chunk's (its host went down)."""
        with self._cursor.lock:
            next_, stop = self._cursor.get()
            self._cursor.set(next_, next_)
        return self._items[next_:stop]

    def restart(self, skip: set[WorkKey]) -> None:
        """Start over with this chunk's items less those in ``skip`` (a task retried
        after a crash: those already stored)."""
        with self._cursor.lock:
            _, stop = self._cursor.get()
            self._items = [item for item in self._items[:stop] if item.key not in skip]
            self._cursor.set(0, len(self._items))

    def move_to(self, cursor: Cursor) -> None:
        """Keep where the chunk stands in ``cursor`` from now on (a lane worker's seat,
        or back in this process once the worker is done with it)."""
        with self._cursor.lock:
            state = self._cursor.get()
        with cursor.lock:
            cursor.set(*state)
        self._cursor = cursor


def as_chunk(items: Sequence[WorkItem]) -> Chunk:
    return items if isinstance(items, Chunk) else Chunk(items)
