"""What Prefect's console logging shows while a command runs a flow."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from evaluation.errors import EvalError
from evaluation.wording import ON_THE_DISPLAY
from flows.deployed_console import RUN_LOGGERS, console_handlers

#: Prefect's records of a host's generation task cut short because the run stopped
#: (cancelled from the UI, or another lane failed), and of the flow run ending Cancelled;
#: and its "Crash detected!" and "Finished in state Crashed" of a flow or task the user
#: stopped (Ctrl-C, or SIGTERM, which the CLI takes as Ctrl-C): the CLI says what
#: happened in one line (``app.ON_INTERRUPT``; newcomer F7: `retrain` printed three such
#: ERROR lines).
_STOPPED = (
    "Execution was cancelled by the runtime environment",
    "Finished in state Cancelled(",
    "Execution was aborted by an interrupt signal",
)


class _ExpectedErrors(logging.Filter):
    """For Prefect's console handler: drops a flow's or task's ERROR record about an
    EvalError (and the "Finished in state Failed" that follows), which the CLI states
    once, in one line, and the records of tasks stopped with the run (``_STOPPED``). The
    Prefect API's log handler still gets them, traceback and all."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(RUN_LOGGERS):
            return True
        if self.seen and str(record.msg).startswith("Finished in state Failed"):
            return False  # logged at INFO or ERROR
        if any(marker in str(record.msg) for marker in _STOPPED):
            return False
        if record.levelno >= logging.ERROR and record.exc_info:
            self.seen = self.seen or isinstance(record.exc_info[1], EvalError)
            return not isinstance(record.exc_info[1], EvalError)
        return True


class _Verbosity(logging.Filter):
    """For Prefect's console handler: which INFO records reach the terminal. Warnings and
    errors always do, but for those the display counts (``ON_THE_DISPLAY``: its failed
    count, repeated in the run's summary) while it is drawn (not with ``-v``). ``-q``
    (-1): no INFO at all, only the result and errors. Default (0): evalflow's own
    progress, not Prefect's lifecycle lines (created, running, finished in state ...),
    told apart by the file that logged them; none at all while the terminal display of
    `run` says it (``displayed``). ``-v`` (1): everything."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.displayed = False
        prefect = sys.modules.get("prefect")
        self.prefect_dir = os.path.dirname(prefect.__file__) + os.sep if prefect else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.displayed and self.level <= 0 and getattr(record, ON_THE_DISPLAY, False):
            return False
        if record.levelno >= logging.WARNING or self.level > 0:
            return True
        if self.level < 0 or self.displayed:
            return False
        return not (self.prefect_dir and record.pathname.startswith(self.prefect_dir))


def left_to_the_display(displayed: bool) -> None:
    """While `run`'s terminal display shows the phases and the progress, the run's INFO
    lines stay off the terminal (not with -v; warnings and errors always show). They
    still reach Prefect's API: the flow run's logs in the UI."""
    for handler in console_handlers():
        for keep in handler.filters:
            if isinstance(keep, _Verbosity):
                keep.displayed = displayed


class _Redacting(logging.Filter):
    """For every handler (console, Prefect's API, files): credentials in a log record's
    text are masked (evaluation.redact; ``known``: the URLs the command was given, found
    verbatim) before it is written anywhere."""

    def __init__(self, known: Sequence[str] = ()) -> None:
        super().__init__()
        self.known = known

    def filter(self, record: logging.LogRecord) -> bool:
        from evaluation.redact import redact

        message = record.getMessage()
        masked = redact(message, self.known)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # a formatter reuses exc_text
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:  # the traceback's last line repeats the error's message
            record.exc_text = redact(record.exc_text, self.known)
        return True


def redact_logs(known: Sequence[str] = ()) -> None:
    """Mask credentials (and those of the ``known`` URLs) in what every configured log
    handler writes. Call after Prefect is imported (it configures its handlers on
    import)."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]  # fmt: skip
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, _Redacting)]:
                handler.removeFilter(old)
            handler.addFilter(_Redacting(known))


def quiet_expected_errors(verbose: bool = False) -> None:
    """Keep Prefect's tracebacks of expected errors off the console (not with -v).
    Call after Prefect is imported: it configures its console handler on import."""
    if verbose:
        return
    for handler in console_handlers():
        if not any(isinstance(f, _ExpectedErrors) for f in handler.filters):
            handler.addFilter(_ExpectedErrors())


def verbosity(args: argparse.Namespace) -> int:
    """-1 with ``-q``, 1 with ``-v``, else 0."""
    return 1 if getattr(args, "verbose", False) else -1 if getattr(args, "quiet", False) else 0


def console_for(args: argparse.Namespace, *, result_says_it: bool = False) -> None:
    """Set Prefect's console output for a command that runs a flow: expected errors in one
    line (see :func:`quiet_expected_errors`) and INFO as ``-q``/``-v`` ask.
    ``result_says_it``: the command prints a result that says what its INFO lines would,
    so they stay off the terminal as they do under `run`'s display (not with -v;
    warnings and errors always show): `retrain` printed a 330-character INFO line
    repeating its result before the result. Call after Prefect is imported."""
    quiet_expected_errors(args.verbose)
    redact_logs(getattr(args, "known", ()))
    level = verbosity(args)
    for handler in console_handlers():
        for old in [f for f in handler.filters if isinstance(f, _Verbosity)]:
            handler.removeFilter(old)
        handler.addFilter(_Verbosity(level))
    left_to_the_display(result_says_it)
