"""Whether this process may still send model calls, and what a call does when it may
not: a stop (Ctrl-C, SIGTERM) parks every call that was not on the wire yet, including
one that waits for a slot (of the run's host limit or of the machine-wide lock files).

Whoever runs a call may listen: ``ON_PARK`` is told when the call parks, ``ON_SLOT_WAIT``
when it starts (True) and ends (False) waiting for a slot, so a stop counts as in flight
only the requests really on the wire (``evaluation.run._in_flight``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_SENDING_STOPPED = threading.Event()
_STOP_LISTENERS: list[Callable[[], None]] = []  # told by stop_sending (lane workers, slots)
# Told when a call parks (set by whoever runs the call, e.g. a case in flight)
ON_PARK: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "evalflow_on_park", default=None
)
# Told when a call starts (True) and stops (False) waiting for a slot
ON_SLOT_WAIT: contextvars.ContextVar[Callable[[bool], None] | None] = contextvars.ContextVar(
    "evalflow_on_slot_wait", default=None
)


def stop_sending() -> None:
    """From any thread, when the process is about to exit (Ctrl-C, SIGTERM): no backend
    sends another model call; the calls already sent finish. One sent after the signal
    would be answered and then lost with the process: host time for nothing. The
    listeners (``on_stop_sending``) are told: lane worker processes stop sending too, and
    lanes waiting for a slot park at once."""
    _SENDING_STOPPED.set()
    for listener in list(_STOP_LISTENERS):
        listener()


def on_stop_sending(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (from the stopping thread) when :func:`stop_sending` is; at once
    if it was already. Returns what removes it."""
    _STOP_LISTENERS.append(listener)
    if _SENDING_STOPPED.is_set():
        listener()

    def remove() -> None:
        if listener in _STOP_LISTENERS:
            _STOP_LISTENERS.remove(listener)

    return remove


def sending_stopped() -> bool:
    """Whether :func:`stop_sending` was called."""
    return _SENDING_STOPPED.is_set()


async def park() -> None:
    """Wait until the process exits: where a model call would be sent after
    :func:`stop_sending`. ``ON_PARK`` is told, so a stop can tell a case parked part-way
    (a pipeline's next call) from one whose request is still on the wire."""
    if (on_park := ON_PARK.get()) is not None:
        on_park()
    await asyncio.Event().wait()


@contextmanager
def waiting_for_slot() -> Iterator[None]:
    """While the block runs, the call waits for a slot: nothing of it is on the wire, so a
    stop neither counts it as in flight nor waits for it (``ON_SLOT_WAIT`` is told)."""
    tell = ON_SLOT_WAIT.get()
    if tell is None:
        yield
        return
    tell(True)
    try:
        yield
    finally:
        tell(False)
