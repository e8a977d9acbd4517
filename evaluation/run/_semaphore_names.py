"""The names of the semaphores a run shares with its helper processes, unlinked once each
helper has opened them.

Under "spawn", multiprocessing's ``Lock`` is a POSIX named semaphore and its ``Event``
five (its condition's lock and three counters, and its flag): a helper opens each by
its name as it unpickles its arguments. The process that made them unlinks the names as
it exits; one killed with ``kill -9`` leaves that to its resource tracker, which then
printed on the terminal, after the run was gone, "resource_tracker: There appear to be
6 leaked semaphore objects to clean up at shutdown". A name is needed only until every
process sharing the semaphore has opened it: unlinked then, the semaphore works on until
the last of them closes it, and the tracker has nothing left to clean up.

No public API says a semaphore's name: this reads multiprocessing's own registry of
finalizers (``util._finalizer_registry``, ``SemLock._cleanup``: CPython 3.11 to 3.13),
which tests/evaluation/test_semaphore_names.py checks against the installed Python.
"""

from __future__ import annotations

from multiprocessing import synchronize, util
from types import TracebackType


class SemaphoreNames:
    """The names of the semaphores made in its ``with`` block (by this thread: the block
    holds nothing else), unlinked by ``unlink``."""

    def __init__(self) -> None:
        self._before: set[tuple] = set()
        self._unlinks: list[util.Finalize] = []

    def __enter__(self) -> SemaphoreNames:
        self._before = set(util._finalizer_registry)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # each named semaphore registers the finalizer that unlinks its name at exit
        self._unlinks = [
            finalizer
            for key, finalizer in list(util._finalizer_registry.items())
            if key not in self._before and finalizer._callback is synchronize.SemLock._cleanup
        ]

    def unlink(self) -> None:
        """Once every process sharing them has opened them: their names unlinked and
        the resource tracker told (each finalizer run now, not at exit)."""
        unlinks, self._unlinks = self._unlinks, []
        for finalizer in unlinks:
            finalizer()
