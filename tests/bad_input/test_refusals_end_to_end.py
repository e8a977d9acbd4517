"""Refusals end to end: the real ``evalflow`` executable in a subprocess (no traceback
anywhere, Prefect never started), and expected errors raised inside Prefect tasks."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.conftest import REPO
from tests.support.results_db import add_experiment, make_config, make_suite

EVALFLOW = Path(sys.executable).with_name("evalflow")


def evalflow(args: list[str], tmp_path: Path, **env: str) -> tuple[int, str, str, float]:
    environment = (
        os.environ
        | {
            "EVALFLOW_HOME": str(tmp_path / "home"),
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "EVALFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        }
        | env
    )
    started = time.perf_counter()
    done = subprocess.run(
        [str(EVALFLOW), *args], capture_output=True, text=True, env=environment, timeout=300
    )
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - started


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_spec(tmp_path: Path, **changes) -> Path:
    spec = {
        "name": "e2e",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": ["llama3.2:1b"],
    } | changes
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_unreachable_host_is_one_line_before_prefect_starts(tmp_path: Path) -> None:
    port = closed_port()
    spec = write_spec(tmp_path, hosts=[{"name": "gpu", "url": f"http://127.0.0.1:{port}"}])
    rc, out, err, _ = evalflow(["run", str(spec)], tmp_path)
    assert rc == 2
    assert "Traceback" not in out + err and "temporary server" not in out + err
    (line,) = err.splitlines()
    assert (
        line.startswith(f"error: {spec}:")
        and (
            f"field 'hosts[0].url': cannot reach any host for model 'llama3.2:1b' "
            f"(GET http://127.0.0.1:{port}/api/tags"
        )
        in line
    )
    assert "`ollama serve`" in line and "OLLAMA_HOST" in line and "`evalflow doctor SPEC`" in line
    assert not (tmp_path / "results.db").exists()  # nothing written, not even a file


def test_unreachable_openai_host_names_the_endpoint_its_kind_asks(tmp_path: Path) -> None:
    """Issue 27: a `kind: openai` host's error named Ollama's /api/tags, which was never
    asked; its preflight asks /v1/models."""
    port = closed_port()
    spec = write_spec(
        tmp_path, hosts=[{"name": "llama-cpp", "url": f"http://127.0.0.1:{port}", "kind": "openai"}]
    )
    rc, out, err, _ = evalflow(["run", str(spec)], tmp_path)
    assert rc == 2 and "Traceback" not in out + err
    assert f"GET http://127.0.0.1:{port}/v1/models: connection refused at 127.0.0.1:{port}" in err
    assert "ConnectError" not in err  # what happened, not the class (newcomer N8)
    assert "/api/tags" not in err and "ollama serve" not in err
    assert "start the OpenAI-compatible server there (llama.cpp's `llama-server`" in err


def test_unreachable_hosts_of_two_kinds_each_get_their_own_hint(tmp_path: Path) -> None:
    ollama, openai = closed_port(), closed_port()
    hosts = [
        {"name": "gpu", "url": f"http://127.0.0.1:{ollama}"},
        {"name": "llama-cpp", "url": f"http://127.0.0.1:{openai}", "kind": "openai"},
    ]
    rc, out, err, _ = evalflow(["run", str(write_spec(tmp_path, hosts=hosts))], tmp_path)
    assert rc == 2 and "Traceback" not in out + err
    (line,) = err.splitlines()
    assert "'gpu': start Ollama there (`ollama serve`)" in line
    assert "'llama-cpp': start the OpenAI-compatible server there" in line


def test_ollama_host_is_honoured_by_run_and_doctor(tmp_path: Path) -> None:
    port = closed_port()
    spec = write_spec(tmp_path)
    for variant in (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"):
        rc, _, err, _ = evalflow(["run", str(spec)], tmp_path, OLLAMA_HOST=variant)
        assert rc == 2 and f"GET http://127.0.0.1:{port}/api/tags" in err
    rc, out, _, _ = evalflow(
        ["doctor", str(spec), "--timeout", "2"], tmp_path, OLLAMA_HOST=f"127.0.0.1:{port}"
    )
    assert rc == 1 and f"http://127.0.0.1:{port}" in out


def test_ollama_host_with_credentials_is_used_and_never_printed(tmp_path: Path) -> None:
    """OLLAMA_HOST=http://user:password@host:port was printed, password and all, and
    turned into http://user:password@host:port:80 (then a 71-line httpx traceback)."""
    port = closed_port()
    spec = write_spec(tmp_path)
    host = f"http://ana:s3cret@127.0.0.1:{port}"
    rc, out, err, _ = evalflow(["run", str(spec)], tmp_path, OLLAMA_HOST=host)
    assert rc == 2 and "Traceback" not in out + err and "s3cret" not in out + err
    (line,) = err.splitlines()
    assert f"GET http://ana:***@127.0.0.1:{port}/api/tags" in line


@pytest.mark.parametrize(
    ("args", "content", "words"),
    [
        (["run", "SPEC"], b"name: t\nmodels: [caf\xe9]\n", "line 2: not UTF-8 text"),
        (
            ["run", "SPEC", "--time-scale", "x"],
            b"",
            "argument --time-scale: expected a number >= 0",
        ),
    ],
)
def test_bad_input_in_a_real_process_is_one_line(
    tmp_path: Path, args: list[str], content: bytes, words: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    rc, out, err, _ = evalflow([str(spec) if a == "SPEC" else a for a in args], tmp_path)
    assert rc == 2 and "Traceback" not in out + err
    (line,) = err.splitlines()
    assert line.startswith("error: ") and words in line


@pytest.fixture
def demo_database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        add_experiment(
            session, "demo", make_suite(3), {make_config(): {"exact_match": [1.0, 0.0, 1.0]}}
        )
    engine.dispose()
    return url


def test_prefect_console_drops_expected_errors_but_the_api_log_keeps_them() -> None:
    """Item 8: Prefect's console handler no longer shows an EvalError's traceback (the
    CLI says it once); other errors, other levels and the API log handler are untouched."""
    import io
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from evaluation.errors import EvalError
    from flows.cli import quiet_expected_errors

    console = PrefectConsoleHandler(stream=io.StringIO())  # as Prefect's logging.yml sets
    logging.getLogger().addHandler(console)
    try:
        quiet_expected_errors()
        quiet_expected_errors()  # idempotent
    finally:
        logging.getLogger().removeHandler(console)
    assert len(console.filters) == 1

    def record(name: str, level: int, msg: str, exc: BaseException | None = None):
        exc_info = (type(exc), exc, None) if exc else None
        return logging.LogRecord(name, level, __file__, 1, msg, (), exc_info)

    expected = EvalError("no experiment named 'nope'")
    assert not console.filter(
        record("prefect.task_runs", logging.ERROR, "Task run failed", expected)
    )
    assert not console.filter(
        record("prefect.flow_runs", logging.ERROR, "Finished in state Failed('x')")
    )
    assert console.filter(record("prefect.task_runs", logging.ERROR, "boom", RuntimeError("x")))
    assert console.filter(record("prefect.flow_runs", logging.INFO, "Beginning flow run"))
    # Only the console handler filters: the run loggers, whose API handler sends records
    # to Prefect's log store, pass every record on, traceback and all.
    # (Prefect's own API-key filter may be there once its logging is set up.)
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        assert all(f.__module__.startswith("prefect.") for f in logging.getLogger(name).filters)


def test_an_expected_error_inside_a_task_is_one_line_end_to_end(
    tmp_path: Path, demo_database: str
) -> None:
    """A failed compare (EvalError in a Prefect task: `--publish` runs the compare flow,
    plain `compare` runs no Prefect) in a real process, with the embedded Prefect server:
    one error line, no traceback; -v shows it."""
    slow = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600"}
    rc, out, err, _ = evalflow(
        ["--database", demo_database, "compare", "--publish", "nope"], tmp_path, **slow
    )
    assert rc == 2 and "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if "no experiment named 'nope'" in line]
    assert errors == [
        "error: no experiment named 'nope'; known experiments: demo; the database searched: "
        f"{demo_database}"
    ], err
    rc, _, err, _ = evalflow(
        ["-v", "--database", demo_database, "compare", "nope"], tmp_path, **slow
    )
    assert rc == 2 and "Traceback" in err


@pytest.mark.usefixtures("prefect_harness")
def test_the_database_url_never_becomes_a_flow_parameter(
    tmp_path: Path, demo_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    suite = tmp_path / "one.jsonl"
    suite.write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    (tmp_path / "one.suite.yaml").write_text(
        "name: one\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    spec = write_spec(
        tmp_path,
        name="secret-check",
        suite=str(suite),
        models=["sim-small:1b"],
        hosts=[{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
    )
    assert main(["--database", demo_database, "run", str(spec)]) == 0
    assert os.environ.get("EVALFLOW_DATABASE_URL") != demo_database  # restored after main()

    async def parameters() -> list[dict]:
        async with get_client() as client:
            runs = await client.read_flow_runs(sort=FlowRunSort.ID_DESC, limit=200)
            return [run.parameters for run in runs]

    runs = asyncio.run(parameters())
    assert any(p.get("spec_path") == str(spec) for p in runs)
    assert not any(demo_database in str(p) for p in runs)


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_checks_hosts_and_models_before_writing(
    tmp_path: Path, demo_database: str
) -> None:
    """Started without the CLI (a deployment, the UI), the flow itself refuses a model no
    host has before it registers anything."""
    from evaluation.errors import ModelNotFound
    from flows.evaluate import evaluate
    from tests.bad_input.test_corpus import row_counts

    spec = write_spec(
        tmp_path,
        models=["nosuch:1b"],
        hosts=[{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
    )
    before = row_counts(demo_database)
    with pytest.raises(ModelNotFound, match="does not have 'nosuch:1b'"):
        asyncio.run(evaluate(spec_path=str(spec), database=demo_database))
    assert row_counts(demo_database) == before
