"""The cases in flight when a run is told to stop (Ctrl-C, SIGTERM), so that what their
requests return is stored before the process exits.

After ``stop_sending`` a lane starts no new case and a case sends no new model call
(it parks at that call for good: a pipeline case part-way through is redone whole by the
rerun). The cases whose requests were already on the wire finish and hand their records
to the writer; :func:`wait_for_cases_in_flight` returns once every case still counted
is parked, when its time is up, or when ``hurry`` is set (a second Ctrl-C).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from evaluation.backends._client import ON_PARK

_changed = threading.Condition()
_cases: dict[int, bool] = {}  # cases started, not yet handed to the writer: parked?
_keys = itertools.count()


@asynccontextmanager
async def case_in_flight() -> AsyncIterator[None]:
    """Count a case as in flight until its record is handed over (the block ends); a
    call of it that parks (``ON_PARK``, inherited by the tasks it starts) marks it parked."""
    key = next(_keys)

    def parked() -> None:
        with _changed:
            _cases[key] = True
            _changed.notify_all()

    with _changed:
        _cases[key] = False
    token = ON_PARK.set(parked)
    try:
        yield
    finally:
        ON_PARK.reset(token)
        with _changed:
            del _cases[key]
            _changed.notify_all()


def cases_in_flight() -> int:
    """Cases whose requests are on the wire or whose record is not handed over yet."""
    with _changed:
        return sum(not parked for parked in _cases.values())


def wait_for_cases_in_flight(timeout_s: float, hurry: threading.Event) -> int:
    """From any thread but the run's own: wait until no case is in flight, for at most
    ``timeout_s`` or until ``hurry`` is set. Returns how many were still in flight."""
    deadline = time.monotonic() + timeout_s
    with _changed:
        while left := sum(not parked for parked in _cases.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or hurry.is_set():
                return left
            _changed.wait(min(0.1, remaining))  # short: ``hurry`` is not a condition
        return 0
