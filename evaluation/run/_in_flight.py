"""The cases in flight when a run is told to stop (Ctrl-C, SIGTERM), so that what their
requests return is stored before the process exits.

After ``stop_sending`` a lane starts no new case and a case sends no new model call
(it parks at that call for good: a pipeline case part-way through is redone whole by the
rerun). The cases whose requests were already on the wire finish and hand their records
to the writer; :func:`wait_for_cases_in_flight` returns once every case still counted
is parked, when its time is up, or when ``hurry`` is set (a second Ctrl-C). A case whose
call waits for a slot (``waiting_for_slot``: another run's, or the machine's lock files)
has nothing on the wire: it is not counted (the stop parks it). Cases that
run in lane worker processes are counted by their pool (``counted_elsewhere``) until
what they return is handed to this process's writer.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from evaluation.backends._sending import ON_PARK, ON_SLOT_WAIT

_changed = threading.Condition()
# cases started, not yet handed to the writer: [parked?, calls waiting for a slot]
_cases: dict[int, list] = {}
_keys = itertools.count()
_ELSEWHERE: list[Callable[[], int]] = []  # cases in flight in lane worker processes


@asynccontextmanager
async def case_in_flight() -> AsyncIterator[None]:
    """Count a case as in flight until its record is handed over (the block ends); a
    call of it that parks (``ON_PARK``, inherited by the tasks it starts) marks it parked,
    and while a call of it waits for a slot (``ON_SLOT_WAIT``) it is not counted."""
    key = next(_keys)
    case = [False, 0]

    def parked() -> None:
        with _changed:
            case[0] = True
            _changed.notify_all()

    def waits(starts: bool) -> None:
        with _changed:
            case[1] += 1 if starts else -1
            _changed.notify_all()

    with _changed:
        _cases[key] = case
    token = ON_PARK.set(parked)
    waiting = ON_SLOT_WAIT.set(waits)
    try:
        yield
    finally:
        ON_SLOT_WAIT.reset(waiting)
        ON_PARK.reset(token)
        with _changed:
            del _cases[key]
            _changed.notify_all()


@contextmanager
def counted_elsewhere(count: Callable[[], int]) -> Iterator[None]:
    """While the block runs, ``count()`` (from any thread) is added to the cases in
    flight: those of lane worker processes whose records this process has not taken in
    yet (``evaluation.run._workers``)."""
    _ELSEWHERE.append(count)
    try:
        yield
    finally:
        _ELSEWHERE.remove(count)


def _in_flight() -> int:
    """The caller holds ``_changed``."""
    here = sum(not parked and not waiting for parked, waiting in _cases.values())
    return here + sum(count() for count in list(_ELSEWHERE))


def cases_in_flight() -> int:
    """Cases whose requests are on the wire or whose record is not handed over yet (not
    those waiting for a slot: nothing of theirs was sent)."""
    with _changed:
        return _in_flight()


def wait_for_cases_in_flight(timeout_s: float, hurry: threading.Event) -> int:
    """From any thread but the run's own: wait until no case is in flight, for at most
    ``timeout_s`` or until ``hurry`` is set. Returns how many were still in flight."""
    deadline = time.monotonic() + timeout_s
    with _changed:
        while left := _in_flight():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or hurry.is_set():
                return left
            _changed.wait(min(0.1, remaining))  # short: ``hurry`` is not a condition
        return 0
