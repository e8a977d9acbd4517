"""SIGTERM for the commands that stop as Ctrl-C does (``judge``): the block is stopped
by the same KeyboardInterrupt, so the same cleanup stores what was completed, and the
command then exits as a shell reports a process SIGTERM ends (143, not Ctrl-C's 130), as
`evalflow run` does (``flows/run_control.py``; docs/hosts-that-fail.md)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StoppedBySignal(KeyboardInterrupt):
    """A KeyboardInterrupt caused by ``signum`` (SIGTERM): the command's cleanup is
    Ctrl-C's, its exit status ``128 + signum`` (``flows/cli/app.py``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


#: The verbs that take SIGTERM as Ctrl-C (:func:`sigterm_as_interrupt`), where the
#: signals held while the CLI imports (``flows.cli.console_main``) are released.
TAKE_SIGTERM = frozenset({"run", "judge", "retrain", "rescore"})


def release_held(command: str) -> None:
    """The signals held while the CLI imported, let in for ``command`` (a verb not in
    :data:`TAKE_SIGTERM`): a Ctrl-C held raises KeyboardInterrupt here (the verb's
    interrupt line), a SIGTERM takes the verb's action (the default's 143, `serve`'s 0)."""
    if command not in TAKE_SIGTERM:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal that stopped the command: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


@contextmanager
def ignored_sigint_taken(take: bool) -> Iterator[None]:
    """Where ``take`` (a verb that stores work, ``app.ON_INTERRUPT``) and SIGINT started
    ignored (a script's background job), Python's Ctrl-C handling for the block: a
    `kill -INT` of such a `judge`, `rescore` or `retrain` was silently ignored, where
    Ctrl-C is promised to stop it with its line (docs/hosts-that-fail.md). Taken before
    the held signals are let in, so a SIGINT held while the CLI imported stops it too."""
    taken = (
        take
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    )
    if taken:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if taken:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the block as Ctrl-C does (asyncio cancels the judge, which stores
    what it completed), instead of killing the process where it stands; the
    KeyboardInterrupt leaves the block as :class:`StoppedBySignal` (exit 143)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    terminated = threading.Event()

    def on_sigterm(_signum: int, _frame: object) -> None:
        terminated.set()
        # A shell that starts a command in the background sets SIGINT to be ignored; where
        # nothing took it (ignored_sigint_taken: a caller other than the CLI's main), the
        # SIGTERM turned into it would be ignored too (CI, run in the background, found
        # it), so it stops the block itself.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            raise StoppedBySignal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        # A signal held while the CLI imported (flows.cli.console_main) lands here.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))
        yield
    except KeyboardInterrupt as exc:
        if terminated.is_set() and not isinstance(exc, StoppedBySignal):
            raise StoppedBySignal(signal.SIGTERM) from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
