"""SIGTERM and SIGHUP for the commands that stop as Ctrl-C does (``judge``): the block
is stopped by the same KeyboardInterrupt, so the same cleanup stores what was completed,
and the command then exits as a shell reports a process the signal ends (143 for
SIGTERM, 129 for SIGHUP, not Ctrl-C's 130), as `evalflow run` does
(``flows/run_control.py``; the signals: ``flows/stop_signals.py``; docs/hosts-that-fail.md)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from flows import stop_signals


class StoppedBySignal(KeyboardInterrupt):
    """A KeyboardInterrupt caused by ``signum`` (SIGTERM, SIGHUP): the command's cleanup is
    Ctrl-C's, its exit status ``128 + signum`` (``flows/cli/app.py``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


#: The verbs that take SIGTERM and SIGHUP as Ctrl-C (:func:`stop_signals_as_interrupt`),
#: where the signals held while the CLI imports (``flows.cli.console_main``) are released.
TAKE_STOP_SIGNALS = frozenset({"run", "judge", "retrain", "rescore"})


def release_held(command: str) -> None:
    """The signals held while the CLI imported, let in for ``command`` (a verb not in
    :data:`TAKE_STOP_SIGNALS`): a Ctrl-C held raises KeyboardInterrupt here (the verb's
    interrupt line), a SIGTERM or SIGHUP takes the verb's action (the default's 143 or
    129; `serve`'s 0 or 129)."""
    if command not in TAKE_STOP_SIGNALS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals.STOP_SIGNALS)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal that stopped the command: 130 for Ctrl-C, 143 for SIGTERM, 129
    for SIGHUP."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def say_stopped(line: str) -> None:
    """A stopped command's last ``line`` on standard error, unless it cannot be written:
    after SIGHUP the terminal is gone (EIO), and the exit status says the rest."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


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
def stop_signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the block as Ctrl-C does (asyncio cancels the judge,
    which stores what it completed), instead of killing the process where it stands;
    the KeyboardInterrupt leaves the block as :class:`StoppedBySignal` (exit 143 or 129).
    One ignored from the start stays ignored (``nohup``'s SIGHUP)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    stopped_by: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopped_by.append(signum)
        # A shell that starts a command in the background sets SIGINT to be ignored; where
        # nothing took it (ignored_sigint_taken: a caller other than the CLI's main), the
        # signal turned into it would be ignored too (CI, run in the background, found
        # it), so it stops the block itself.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            raise StoppedBySignal(signum)
        signal.raise_signal(signal.SIGINT)

    previous = stop_signals.take(on_signal)
    try:
        # A signal held while the CLI imported (flows.cli.console_main) lands here.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals.STOP_SIGNALS)
        yield
    except KeyboardInterrupt as exc:
        if stopped_by and not isinstance(exc, StoppedBySignal):
            raise StoppedBySignal(stopped_by[0]) from exc
        raise
    finally:
        stop_signals.restore(previous)
