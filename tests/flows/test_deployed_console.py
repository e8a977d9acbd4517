"""A deployment's flow run (under `evalflow serve`, or on a worker) that fails on the
user's input says so on its console in one line per record, without Prefect's
tracebacks: the newcomer's N1, a served run of a missing spec printed four chained
tracebacks (94 lines) where `evalflow run` prints one `error:` line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect import states
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow

from evaluation.errors import SpecError, StorageError
from flows.deployed_console import RUN_LOGGERS, _EvalErrorInOneLine, console_handlers
from flows.evaluate import evaluate
from tasks.sweep import record_outcome


def _raised(error: Exception) -> tuple:
    """``error`` raised from a FileNotFoundError, as ``sys.exc_info()`` has it."""
    try:
        try:
            Path("/nonexistent/spec.yaml").read_text()
        except FileNotFoundError as exc:
            raise error from exc
    except Exception as exc:
        return type(exc), exc, exc.__traceback__


def test_a_run_s_eval_error_is_one_line_once_and_other_handlers_keep_the_traceback():
    console, api = io.StringIO(), []
    handler = logging.StreamHandler(console)
    handler.addFilter(_EvalErrorInOneLine(handler))
    kept = logging.Handler()
    kept.emit = api.append  # as Prefect's API log handler: the run's logs in the UI
    loggers = [logging.getLogger(f"prefect.{kind}_runs.test") for kind in ("task", "flow")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.addHandler(kept)
        logger.propagate = False
    task, flow = loggers
    spec = _raised(SpecError("cannot read the spec file", field="<document>", path="s.yaml"))
    try:
        task.error("Task run failed with exception: %r", spec[1], exc_info=spec)
        flow.error("Encountered exception during execution: %r", spec[1], exc_info=spec)
        storage = _raised(StorageError("the results database r.db: no such table: runs"))
        flow.error("An error was encountered while running hook 'record_outcome'", exc_info=storage)
        flow.error("a bug", exc_info=_raised(RuntimeError("not evalflow's")))
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.removeHandler(kept)
            logger.propagate = True
    lines = console.getvalue().splitlines()
    assert lines[:3] == [
        "Task run failed with exception: SpecError('s.yaml: cannot read the spec file')",
        "An error was encountered while running hook 'record_outcome': "
        "the results database r.db: no such table: runs",
        "a bug",  # not an EvalError: its traceback stays
    ]
    assert lines[3] == "Traceback (most recent call last):"
    assert [r.exc_info is not None for r in api] == [True] * 4  # the API's handler: as before


@pytest.fixture
def fresh_process_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Prefect's console logging as a fresh process has it, as `evalflow serve`'s runner
    does: its console handlers with no filter (a command run in-process by an earlier
    test leaves the CLI's, whose _ExpectedErrors drops a run's EvalError records: in the
    full suite the test below saw nothing written) and every level open to a run's
    records, as Prefect configures them. All taken back after the test."""
    for handler in console_handlers():
        monkeypatch.setattr(handler, "filters", [])
    loggers = [logging.getLogger(name) for name in ("prefect", *RUN_LOGGERS)]
    handlers = console_handlers()
    before = [(x, x.level) for x in [*loggers, *handlers]]
    for logger in loggers:
        monkeypatch.setattr(logger, "disabled", False)
        monkeypatch.setattr(logger, "propagate", True)
    for thing in [*loggers[1:], *handlers]:
        thing.setLevel(logging.NOTSET)
    loggers[0].setLevel(min(loggers[0].level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        for thing, level in before:
            thing.setLevel(level)


@pytest.mark.usefixtures("prefect_harness")
def test_a_deployed_run_of_a_missing_spec_says_it_without_a_traceback(
    tmp_path, monkeypatch, fresh_process_console
):
    """As `evalflow serve`'s runner runs a deployment's flow run (in a fresh process: here
    in this one, its console as a fresh process's), with the spec path the newcomer
    gave."""
    console = io.StringIO()
    assert console_handlers()  # Prefect's, which write the runner's terminal
    for handler in console_handlers():
        monkeypatch.setattr(handler.console, "file", console)
    missing = str(tmp_path / "missing.yaml")
    deployment = evaluate.to_deployment(name="console-test").apply()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment, parameters={"spec_path": missing, "database": f"sqlite:///{tmp_path}/r.db"}
        )
    with pytest.raises(SpecError):
        asyncio.run(run_flow(evaluate, flow_run=flow_run, parameters=flow_run.parameters))
    said = console.getvalue()
    assert "Traceback" not in said, said
    assert f"Task run failed with exception: SpecError('{missing}: cannot read" in said, said


def test_a_failed_run_that_opened_no_database_creates_none(tmp_path):
    """The run failed before it opened its database (a fresh home, `serve
    --no-metrics`): its hook has nothing to end, and it printed a traceback of the empty
    database it made ('no such table: experiment_runs')."""
    database = tmp_path / "never.db"
    flow_run = SimpleNamespace(id="f-1", parameters={"database": f"sqlite:///{database}"})
    record_outcome(None, flow_run, states.Failed(message="no spec"))
    assert not database.exists()
