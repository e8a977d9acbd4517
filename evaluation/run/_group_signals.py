"""The run's helper processes (lane workers, the record writer) and the signals sent to
the whole process group: a terminal's Ctrl-C (or its SIGHUP as it closes), a service
manager's SIGTERM. The run says
when its helpers stop, so they ignore both from their first instruction on, not only
once their imports are done: a Ctrl-C in those seconds (``--workers 2`` took 8–15 s to
start on 2 loaded cores) printed a KeyboardInterrupt traceback from each of them."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker

GROUP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: a terminal closed


@contextmanager
def deaf_children() -> Iterator[None]:
    """Around a helper process's start: the group's signals blocked in this thread, so
    the child starts with them blocked (a signal mask survives fork and exec, and Python
    leaves a blocked signal pending, not raised). This process still gets them: through
    its other threads, or here once unblocked. The child calls :func:`ignore_group_signals`.
    multiprocessing's resource tracker starts the same way, and unblocks both as it
    does: it is started first, when it is not running yet."""
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def ignore_group_signals() -> None:
    """In a helper process: the group's signals ignored (one already pending is
    discarded with it), then unblocked."""
    for signum in GROUP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, GROUP_SIGNALS)
