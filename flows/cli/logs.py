"""What Prefect's console logging shows while a command runs a flow."""

from __future__ import annotations

import logging

from evaluation.errors import EvalError

_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class _ExpectedErrors(logging.Filter):
    """For Prefect's console handler: drops a flow's or task's ERROR record about an
    EvalError (and the "Finished in state Failed" that follows), which the CLI states
    once, in one line. The Prefect API's log handler still gets them, traceback and all."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_RUN_LOGGERS):
            return True
        if self.seen and str(record.msg).startswith("Finished in state Failed"):
            return False  # logged at INFO or ERROR
        if record.levelno >= logging.ERROR and record.exc_info:
            self.seen = self.seen or isinstance(record.exc_info[1], EvalError)
            return not isinstance(record.exc_info[1], EvalError)
        return True


def quiet_expected_errors(verbose: bool = False) -> None:
    """Keep Prefect's tracebacks of expected errors off the console (not with -v).
    Call after Prefect is imported: it configures its console handler on import."""
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler" and not any(
            isinstance(f, _ExpectedErrors) for f in handler.filters
        ):
            handler.addFilter(_ExpectedErrors())
