"""The `evalflow` command line, one module per verb group (see ``app.VERB_GROUPS``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from flows.cli._collector import pause_for

__all__ = ["console_main", "main", "quiet_expected_errors"]

_LATER = {"main": "flows.cli.app", "quiet_expected_errors": "flows.cli.logs"}
_VALUED_OPTIONS = {"--database"}  # the global options that take a value (see app)


def console_main() -> int:
    """The `evalflow` executable (``app.console_main``)."""
    # The embedded Prefect server otherwise announces (and tries to send) usage data;
    # set before `run` launches it, which it inherits. A user's setting wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Likewise Prefect's client, on its first import in a terminal: three lines of notice
    # in a newcomer's first run, and an event sent to Prefect.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    command = verb(sys.argv[1:])
    pause_for(command)  # `show`, `view` ...: their start-up without the cyclic collector
    if command is not None:
        _hold_interrupts()
    if command == "serve":
        _serve_stops()
    from flows.cli.app import console_main as run_command

    return run_command()


def _hold_interrupts() -> None:
    """A Ctrl-C, SIGTERM or SIGHUP while the CLI's modules import (~0.3 s, seconds under
    load) is held until the command takes it: `run`, `judge`, `retrain` and `rescore` in
    ``_signals.stop_signals_as_interrupt`` (`run` then says it stopped before anything
    was stored and how to start it over, `judge` that a rerun resumes), every other verb
    once its command line is parsed
    (``_signals.release_held``: Ctrl-C says the verb's line of ``app.ON_INTERRUPT``).
    Unheld, SIGTERM ended `run` and `judge` without a word (143), SIGHUP likewise (129),
    and Ctrl-C printed a traceback. A Ctrl-C ignored from the start (a script's
    background job) stays ignored, but for the verbs that store work, which take it
    (``_signals.ignored_sigint_taken``)."""
    import signal

    from flows.stop_signals import STOP_SIGNALS

    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _serve_stops() -> None:
    """`serve` stops on SIGTERM with 0, as Prefect's runner does once serving (its
    schedules paused, the flow runs it took ended: ``deployments.serve``); before, while
    it starts, by :func:`_stop_before_serving`. SIGHUP takes that same way out, with 129
    (:func:`_hangup_as_sigterm`): it ended `serve` at once, its schedules left running."""
    import signal

    from flows import stop_signals

    signal.signal(signal.SIGTERM, _stop_before_serving)  # Prefect's runner's, once serving
    stop_signals.take(_hangup_as_sigterm, (signal.SIGHUP,))


def _stop_before_serving(signum: int, _frame: object) -> NoReturn:
    """SIGTERM while `serve` starts (its imports, Prefect's temporary server, the
    deployments): the default action killed it with 143, unlike the 0 of Prefect's
    runner once serving. Leaving by SystemExit stops what started (atexit)."""
    from flows.stop_signals import name

    os.write(2, f"serve: stopped by {name(signum)} before it was serving\n".encode())
    raise SystemExit(0)


def _hangup_as_sigterm(signum: int, frame: Any) -> None:
    """SIGHUP for `serve`: what SIGTERM's handler does now (before serving, or Prefect's
    runner's stop), then exit 129 where SIGTERM's exits 0."""
    import signal

    handler = signal.getsignal(signal.SIGTERM)
    if not callable(handler):  # SIGTERM not taken (ignored from the start)
        raise SystemExit(128 + signum)
    try:
        handler(signum, frame)
    except SystemExit as stopped:
        raise SystemExit(stopped.code or 128 + signum) from None


def verb(argv: Sequence[str]) -> str | None:
    """The command's verb: its first word that is not a global option or its value
    (None with --help, which starts nothing)."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return None if {"-h", "--help"} & set(argv) else word
    return None


def __getattr__(name: str) -> Any:
    if name in _LATER:
        from importlib import import_module

        return getattr(import_module(_LATER[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
