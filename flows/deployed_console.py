"""What a deployment's flow run (under `evalflow serve`, or on a worker) writes to its
process's console about an evalflow error: one line. An ``EvalError`` says what is wrong
with the user's input or setup (a spec that cannot be read) in its message, and Prefect
logged it with its traceback, chained causes and all, once for the task that raised it
and again for the flow (94 lines for a missing spec file). `evalflow run` says such an
error itself (flows/cli/logs.py); the Prefect API's log handler (the run's logs in the
UI) still gets the traceback."""

from __future__ import annotations

import logging

from evaluation.errors import EvalError

#: The loggers of Prefect's flow and task runs, whose records carry a run's errors.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers (it configures them when it is imported)."""
    return [h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"]


class _EvalErrorInOneLine(logging.Filter):
    """For Prefect's console handler: a flow or task run's record of an ``EvalError`` is
    written once, as one line that ends with the error's message, without the traceback;
    a later record of the same error (the flow's, after its task's) is left out. The
    record itself is left as it is for the other handlers."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self.said: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, EvalError) or not record.name.startswith(RUN_LOGGERS):
            return True
        if error is self.said:
            return False
        self.said = error
        message = record.getMessage()
        if str(error) not in message:
            message = f"{message}: {error}"
        line = {**record.__dict__, "msg": message, "args": None, "exc_info": None}
        self.handler.handle(logging.makeLogRecord({**line, "exc_text": None}))
        return False


def deployed_errors_in_one_line() -> None:
    """In a deployment's flow run, put ``_EvalErrorInOneLine`` on the console (once);
    a flow run that `evalflow` started itself (no deployment) is left to the CLI."""
    from prefect.context import FlowRunContext  # the CLI reads this module before Prefect

    context = FlowRunContext.get()
    if context is None or context.flow_run is None or context.flow_run.deployment_id is None:
        return
    for handler in console_handlers():
        if not any(isinstance(f, _EvalErrorInOneLine) for f in handler.filters):
            handler.addFilter(_EvalErrorInOneLine(handler))
