"""The pieces every refusal goes through (issue 26 §2): the CLI edge (one line, exit 2
for input and 1 for evalflow's own failures, the traceback only under -v), the one
redaction, storage errors in one line, settings that keep credentials out of sight, the
host check's retries, and `deploy` to a missing work pool."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from evaluation.errors import BackendUnavailable, EvalError, StorageError
from evaluation.redact import one_line, redact
from evaluation.settings import ollama_url
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.runs import failure_reason
from flows.cli import main

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"postgresql://ana:{SECRET}@db:5432/x", "postgresql://ana:***@db:5432/x"),
        (f"http://ana:{SECRET}@gpu:11434/api", "http://ana:***@gpu:11434/api"),
        (f"http://ana:p@ss{SECRET}@gpu/x", "http://ana:***@gpu/x"),  # '@' in the password
        (f"ana:{SECRET}@gpu:11434", "ana:***@gpu:11434"),  # OLLAMA_HOST without a scheme
        (f"postgresql://db/x?sslmode=require&password={SECRET}", None),
        (f"http://h/x?token={SECRET}", "http://h/x?token=***"),
        (f"http://h/x?api_key={SECRET}&a=1", "http://h/x?api_key=***&a=1"),
        (f"OLLAMA_HOST='http://u:{SECRET}@h:1' failed", "OLLAMA_HOST='http://u:***@h:1' failed"),
    ],
)
def test_redact_masks_every_form_of_credential(text: str, shown: str | None) -> None:
    assert SECRET not in redact(text)
    if shown is not None:
        assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:////home/ana/.evalflow/evalflow.db",
        "field 'grid.top_p[0]': top_p must be in (0, 1], got 2.0",
        "models: sim-small:1b, llama3.2:3b",
    ],
)
def test_redact_leaves_text_without_credentials_alone(text: str) -> None:
    assert redact(text) == text


def test_one_line_is_one_short_redacted_line() -> None:
    long = f"boom\n  [SQL: INSERT ...]\n  password={SECRET} " + "x" * 2000
    line = one_line(long, limit=200)
    assert "\n" not in line and len(line) == 200 and SECRET not in line


def test_ollama_host_with_credentials_keeps_them_for_requests_and_its_port() -> None:
    assert ollama_url(f"http://ana:{SECRET}@gpu:9") == f"http://ana:{SECRET}@gpu:9"
    assert ollama_url(f"ana:{SECRET}@gpu") == f"http://ana:{SECRET}@gpu:11434"


@pytest.mark.parametrize("value", ["gpu:11434:9", "gpu:0", "gpu:65536", "gpu:port"])
def test_ollama_host_with_a_bad_port_is_refused_naming_the_source(value: str) -> None:
    with pytest.raises(EvalError, match="--url"):
        ollama_url(value, source="--url")


def test_a_storage_error_is_one_line_naming_the_database_without_the_statement(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.db"
    engine = make_engine(f"sqlite:///{path}", create=False)
    with session_scope(engine) as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, output TEXT)"))
    output = "model output " * 300  # ~3.9 KB of parameters
    with pytest.raises(StorageError) as info, session_scope(engine) as session:
        for _ in range(2):
            session.execute(text("INSERT INTO t VALUES (1, :o)"), {"o": output})
    message = str(info.value)
    assert message.startswith(f"the results database {path}: UNIQUE constraint failed")
    assert "\n" not in message and "[SQL" not in message and "model output" not in message
    assert len(message) < 300
    engine.dispose()


def test_the_stored_reason_of_a_failed_run_is_one_short_line() -> None:
    exc = IntegrityError("INSERT INTO generation ...", {"output": "x" * 4000}, Exception("boom"))
    assert failure_reason(exc) == "the results database: boom"
    long = RuntimeError("first\n" + "y" * 4000)
    assert "\n" not in failure_reason(long) and len(failure_reason(long)) <= 500


def test_an_error_that_is_not_the_users_is_one_line_exit_1_with_the_traceback_under_v(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError(f"internal state lost\nsecond line http://a:{SECRET}@h")

    monkeypatch.setattr("flows.cli.results.cmd_experiments", broken)
    assert main(["experiments"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: evalflow failed: RuntimeError")
    assert "not a problem with your input" in err and SECRET not in err

    assert main(["-v", "experiments"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("error: evalflow failed")


def test_a_bad_spec_under_v_shows_the_traceback_then_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: t\n")
    assert main(["-v", "plan", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.splitlines()[-1] == f"error: {spec}:1:1: field 'suite': is required"


class _FlakyHost:
    """A backend whose first model listing drops the connection."""

    def __init__(self) -> None:
        from evaluation.spec import HostSpec

        self.host = HostSpec("gpu", "http://gpu:11434", 1, "ollama", None)
        self.calls = 0

    async def list_models(self) -> list:
        self.calls += 1
        if self.calls == 1:
            raise BackendUnavailable("gpu: ReadError: connection reset by peer", host="gpu")
        from evaluation.backends.base import ModelInfo

        return [ModelInfo(name="llama3:latest")]


def test_the_host_check_retries_a_dropped_connection_before_calling_a_host_down() -> None:
    from evaluation.run._preflight import _check

    host = _FlakyHost()
    check = asyncio.run(_check(host, ["llama3:latest"]))  # type: ignore[arg-type]
    assert check.up and "llama3:latest" in check.models and host.calls == 2


@pytest.mark.usefixtures("prefect_harness")
def test_deploy_to_a_missing_work_pool_says_which_pool_to_create_and_how() -> None:
    from deployments.serve import build_deployments, check_server
    from tests.conftest import REPO

    deployments = build_deployments(
        nightly_spec=REPO / "benchmarks/sweeps/demo-simulated.yaml", work_pool_name="no-such"
    )
    with pytest.raises(EvalError) as info:
        asyncio.run(check_server(deployments))
    assert "no work pool 'no-such'" in str(info.value)
    assert "prefect work-pool create no-such --type process" in str(info.value)


def test_plan_never_prints_a_hosts_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import REPO

    monkeypatch.setenv("EVALFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: t\nsuite: {REPO / 'benchmarks/suites/qa-short.jsonl'}\nmodels: [llama3:8b]\n"
        f"hosts: [{{name: gpu, url: 'http://ana:{SECRET}@gpu:11434'}}]\n"
    )
    assert main(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "http://ana:***@gpu:11434" in out and SECRET not in out


def test_log_handlers_write_no_credentials() -> None:
    import io
    import logging

    from flows.cli.logs import redact_logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("evalflow.test.redaction")
    logger.addHandler(handler)
    try:
        redact_logs()
        logger.warning("retrying %s", f"http://ana:{SECRET}@gpu:11434/api/chat")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "retrying http://ana:***@gpu:11434/api/chat\n"


def test_the_preflight_refuses_a_rag_embedding_model_the_host_lacks(tmp_path: Path) -> None:
    """The pipeline's embed_model was never checked (only a metric's): on real Ollama
    the run failed midway instead of being refused."""
    from evaluation.errors import BackendError
    from evaluation.run._preflight import check_before_run
    from evaluation.run._sweep import prepare_sweep
    from tests.conftest import REPO
    from tests.support.standin_ollama import StandInConfig, running_standin

    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "text": "Paris is in France."}\n')
    with running_standin(StandInConfig(models=("llama3:latest",))) as standin:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            f"name: t\nsuite: {REPO / 'benchmarks/suites/qa-short.jsonl'}\n"
            "models: [llama3:latest]\n"
            "pipeline: {name: rag, corpus: corpus.jsonl, embed_model: nomic-embed-text}\n"
            f"hosts: [{{name: gpu, url: '{standin.url}'}}]\n"
        )
        sweep = prepare_sweep(spec)
        with pytest.raises(BackendError, match="nomic-embed-text"):
            check_before_run(sweep)


def test_a_read_only_database_is_named_as_such_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    path = tmp_path / "r.db"
    with sqlite3.connect(path) as connection:  # a database without evalflow's tables yet
        connection.execute("PRAGMA user_version = 1")  # (no table: one is another's, below)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert main(["--database", read_only, "experiments"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: cannot open the results database {read_only}: it is read-only")
    assert "its URL opens it read-only (mode=ro); drop mode=ro" in line and "[SQL" not in line
    with sqlite3.connect(path) as connection:  # another application's: that is what it is
        connection.execute("CREATE TABLE notes (text TEXT)")
    assert main(["--database", read_only, "experiments"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"error: the database file:{path} holds 1 table, none of them evalflow's"
    )


def test_a_home_that_is_not_writable_is_read_and_refused_only_to_create_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The newcomer's F3: with EVALFLOW_HOME a teammate's shared home they may not write,
    every verb refused (`the folder is not writable`), `experiments` and `status` too.
    Its database is read (as a snapshot, said in a note: SQLite cannot make a WAL
    database's files there; tests/selection/test_read_only_share.py); only a writer about
    to create one there is refused, saying what to do. (os.access stands in for the
    permissions root does not have.)"""
    import os

    from evaluation.settings import SettingError, make_home_for

    shared, fresh = tmp_path / "shared", tmp_path / "fresh"
    shared.mkdir()
    make_engine(f"sqlite:///{shared / 'evalflow.db'}").dispose()
    fresh.mkdir()
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK and writable(path, mode))
    monkeypatch.delenv("EVALFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("EVALFLOW_HOME", str(shared))
    snapshot = f"note: read the results database {shared / 'evalflow.db'} as a snapshot: "
    for verb in ("experiments", "status"):  # where SQLite cannot make the WAL's files
        assert main([verb]) == 0
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(snapshot + "its folder is read-only")
    monkeypatch.setenv("EVALFLOW_HOME", str(fresh))
    with pytest.raises(SettingError) as refused:
        make_home_for(f"sqlite:///{fresh / 'evalflow.db'}")
    assert str(refused.value) == (
        f"environment variable EVALFLOW_HOME='{fresh}': the folder is not writable, and the "
        "results database would be created in it; point EVALFLOW_HOME at a folder you may "
        "write (and --database at a database to read elsewhere)"
    )
