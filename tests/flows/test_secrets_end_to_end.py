"""No password shown or stored anywhere (issue 43 §1), through real commands.

A sweep on PostgreSQL whose URL holds a password with ``/``, a quote, a space, ``:``,
``#``, ``?`` and a percent-encoded ``@``, against a host whose URL holds one with a
space, a quote and raw ``@`` and ``:``, with ``OLLAMA_HOST`` carrying one too: a real
``evalflow run`` process interrupted with Ctrl-C, a run that fails, a run to the end,
then every command that reads it back (``experiments``, ``show``, ``export``,
``report``, ``view --export``, ``doctor``, ``plan``) and ``judge`` against a host that
is not there. Every output, every file written under the test's folder (the interrupted
run's Prefect database with its flow run, parameters and logs; evalflow's logs;
exports, report and pages, compressed ones opened), the Prefect database of the
in-process runs (their artifacts, parameters and logs) and every row of the results
database are searched for the two ends of each password: neither may appear, whatever
the rest of the password holds."""

from __future__ import annotations

import io
import logging
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import psycopg2
import pyarrow.parquet as pq
import pytest
import yaml

from flows.cli import main
from flows.cli.run import PASSWORD_NOTE
from tests.conftest import REPO
from tests.flows.test_run_lifecycle import environment, evalflow, interrupt, kill_all, wait_for
from tests.support.databases import fresh_postgres_url
from tests.support.standin_ollama import StandInConfig, running_standin

MARKERS = ("Sq7w", "Wv4k", "Hx3q", "Jm8z", "Kp2d", "Zr6t")  # the ends of three passwords
DATABASE_PASSWORD = "Sq7w/ 'p%40ss:#?Wv4k"  # SQLAlchemy reads: Sq7w/ 'p@ss:#?Wv4k
HOST_PASSWORD = "Hx3q 'p@ss:Jm8z"
OLLAMA_PASSWORD = "Kp2d/ p@ss'Zr6t"
SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
START_S = 600  # Prefect's start-up on a loaded 2-core machine; seconds when quiet


def leaks(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker in text]


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(the URL with the password, the database name) of a fresh PostgreSQL database;
    trust authentication takes any password, so the URL works."""
    for url in fresh_postgres_url("secrets"):
        yield url.replace("postgres@", f"postgres:{DATABASE_PASSWORD}@"), url.rsplit("/", 1)[1]


def rows(name: str) -> str:
    """Every row of every table of the results database, as text."""
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = [t for (t,) in cursor.fetchall()]
            text = []
            for table in tables:
                cursor.execute(f'SELECT t::text FROM "{table}" t')
                text += [f"{table}: {row}" for (row,) in cursor.fetchall()]
    finally:
        connection.close()
    assert len(text) > 50, "the run stored its rows"
    return "\n".join(text)


def files_text(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text: parquet tables read, zip members (xlsx) opened."""
    found = {}
    for path in (p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if path.suffix == ".parquet":
            raw = str(pq.read_table(path).to_pylist()).encode()
        elif raw[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                raw = b"".join(archive.read(member) for member in archive.namelist())
        found[str(path.relative_to(root))] = raw.decode("utf-8", "replace")
    return found


def write_spec(path: Path, url: str) -> Path:
    spec = {
        "name": "secrets",
        "suite": str(SUITE),
        "models": ["llama3.2:3b"],
        "grid": {"temperature": [0.0], "num_predict": [8]},
        "hosts": [{"name": "gpu", "url": url, "slots": 2}],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def prefect_database() -> Path:
    """The file of the Prefect API the in-process runs report to (the test harness)."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    return Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])


@pytest.mark.usefixtures("prefect_harness")
def test_no_password_is_shown_or_stored_by_any_command(
    tmp_path: Path, postgres: tuple[str, str], monkeypatch, capsys
) -> None:
    database, name = postgres
    shown_database = database.replace(DATABASE_PASSWORD, "***")
    env = environment(tmp_path) | {"OLLAMA_HOST": f"ana:{OLLAMA_PASSWORD}@127.0.0.1:9"}
    env.pop("EVALFLOW_DATABASE_URL")
    monkeypatch.setenv("EVALFLOW_HOME", env["EVALFLOW_HOME"])
    monkeypatch.setenv("OLLAMA_HOST", env["OLLAMA_HOST"])
    outputs: list[str] = []

    def evalflow_here(*argv: str) -> int:
        code = main(["--database", database, *argv])
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        return code

    config = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=40.0)
    with running_standin(config) as standin:
        host = standin.url.replace("http://", f"http://ana:{HOST_PASSWORD}@")
        spec = write_spec(tmp_path / "spec.yaml", host)
        # A real process, stopped by Ctrl-C once it stored a few generations.
        run = evalflow(env, "--database", database, "run", str(spec))
        try:
            wait_for(lambda: stored(name) >= 3, START_S, run)
            _, output, _ = interrupt(run, signal.SIGINT)
        finally:
            kill_all([run.pid])
        outputs.append(output)
        # A run that fails: a library's error quoting the URL and the decoded password.
        with monkeypatch.context() as patch:
            said = f"could not use {database} (password {unquote(DATABASE_PASSWORD)})"
            patch.setattr("flows.evaluate.record_telemetry", _raising(RuntimeError(said)))
            failed = evalflow_here("run", str(spec))
        finished = evalflow_here("run", str(spec))
        export, pages = tmp_path / "export", tmp_path / "pages"
        read = [
            evalflow_here(*command)
            for command in (
                ["experiments"],
                ["show", "secrets"],
                ["export", "secrets", "--out", str(export), "--level", "generations"],
                ["export", "secrets", "--out", str(export), "--format", "parquet"],
                ["report", "secrets", "--out", str(tmp_path / "report.html")],
                ["view", "secrets", "--export", str(pages)],
                ["doctor", str(spec), "--timeout", "5"],
                ["plan", str(spec)],
            )
        ]
        judged = evalflow_here(
            "judge",
            "secrets",
            "--model",
            "m:1b",
            "--url",
            f"http://ana:{HOST_PASSWORD}@127.0.0.1:9",
        )
    flush_prefect_logs()

    resume = f"resume with: evalflow --database '{shown_database}' run {spec}{PASSWORD_NOTE}"
    assert outputs[0].strip().splitlines()[-1] == f"interrupted: 'secrets' stopped; {resume}"
    assert failed == 1 and outputs[1].strip().endswith(resume), outputs[1]
    assert "error: the run failed: RuntimeError: could not use" in outputs[1]
    assert finished == 0 and "36 already done (resumed)" in outputs[2], outputs[2]
    assert read == [0] * len(read) and judged == 2, list(zip(read, outputs[3:], strict=False))
    assert (export / "secrets-generations.csv").exists() and (pages / "summary.html").exists()
    for text in outputs:
        assert not leaks(text), text
    written = files_text(tmp_path)
    assert leaks(written.pop("spec.yaml"))  # the user's own file: the one place it is
    for path, text in written.items():
        assert not leaks(text), path
    for path in prefect_database().parent.glob(prefect_database().name + "*"):
        # the server's database files and the slot registry's folder beside it (holder files)
        for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
            assert not leaks(file.read_bytes().decode("utf-8", "replace")), file
    assert not leaks(rows(name))


def flush_prefect_logs() -> None:
    """The runs' log records, sent to Prefect's database now."""
    from prefect.logging.handlers import APILogHandler

    for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, APILogHandler):
                handler.flush()


def _raising(error: Exception):
    def task(*args, **kwargs):
        raise error

    return task


def stored(name: str) -> int:
    """Generations stored so far (0 before the tables exist)."""
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name)
    except psycopg2.OperationalError:
        return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM generations WHERE status = 'ok'")
            return cursor.fetchone()[0]
    except psycopg2.Error:  # the tables are not created yet
        return 0
    finally:
        connection.close()
