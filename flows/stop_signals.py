"""The signals that stop a long command, in one place: Ctrl-C (SIGINT), a service
manager's SIGTERM and a terminal's SIGHUP (it closed, the ssh dropped). The CLI holds
them while it imports (``flows.cli.console_main``); `run` (``flows.run_control``),
`judge`, `rescore` and `retrain` (``flows.cli._signals``) and `serve` take SIGHUP as
they take SIGTERM, and exit 128 + the signal: 130, 143, 129 (docs/hosts-that-fail.md).

SIGHUP was left to its default action but in `run` once it had claimed its experiment:
a terminal that closed in `run`'s first second, or under `judge`, `rescore`, `retrain`
or `serve`, ended the process at once, without its line, its requests in flight lost
(`judge`'s verdicts), the schedules of `serve` left running. A signal ignored from the
start stays ignored (``nohup`` ignores SIGHUP for the command it starts)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

#: What stops a long command as SIGTERM does: SIGTERM, and SIGHUP taken as it.
TERMINATING = (signal.SIGTERM, signal.SIGHUP)
#: Everything that stops a long command: Ctrl-C too.
STOP_SIGNALS = (signal.SIGINT, *TERMINATING)

Handler = Callable[[int, FrameType | None], object]


def taken(signums: tuple[int, ...] = TERMINATING) -> list[int]:
    """Those of ``signums`` a command may take: each but one ignored from the start
    (``nohup``'s SIGHUP, a supervisor's ignored SIGTERM)."""
    return [s for s in signums if signal.getsignal(s) is not signal.SIG_IGN]


def take(handler: Handler, signums: tuple[int, ...] = TERMINATING) -> dict[int, object]:
    """``handler`` installed for each of ``signums`` not ignored (:func:`taken`); the
    handlers it replaced, for :func:`restore`."""
    return {s: signal.signal(s, handler) for s in taken(signums)}


def restore(previous: dict[int, object]) -> None:
    """Put back the handlers :func:`take` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]


@contextmanager
def held() -> Iterator[None]:
    """The stop signals held while the block runs, each taken as it ends: an import. A
    KeyboardInterrupt in the middle of one leaves a module half made, its first tables in
    SQLModel's metadata: the stopped command's line imported it again and failed ("Table
    'series_runs' is already defined", exit 1: recheck's R2)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def name(signum: int) -> str:
    """``SIGTERM``, ``SIGHUP``: as a line says what stopped the command."""
    return signal.Signals(signum).name
