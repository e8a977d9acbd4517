"""The embedded Prefect server keeps its own output out of the command's terminal: it
goes to a log file under evalflow's home, which a failure to start names."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from flows import embedded_server, prefect_schema
from flows.embedded_server import EmbeddedServer, EmbeddedServerError


def test_a_server_that_fails_logs_to_its_file_and_the_error_names_it(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    # A database the server cannot open: its start-up fails with a traceback.
    missing = tmp_path / "no-such-folder" / "prefect.db"
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{missing}")
    server = EmbeddedServer()
    server.start()
    try:
        with pytest.raises(EmbeddedServerError) as failed:
            server.wait_ready(timeout_s=120)
    finally:
        server.stop()

    log = tmp_path / "home" / "logs" / "prefect-server.log"
    assert server.log_path == log
    assert str(log) in str(failed.value)
    # Why, from its log; not `prefect server start`, which opens the same database.
    said = str(failed.value)
    assert "before it answered: sqlalchemy.exc.OperationalError: " in said, said
    assert said.count("unable to open database file") == 1 and "prefect server" not in said
    text = log.read_text()
    assert text.startswith(f"--- evalflow process {os.getpid()}: ")
    assert "Traceback" in text and "unable to open database file" in text
    terminal = capfd.readouterr()
    assert terminal.out == "" and terminal.err == "", terminal


def test_a_server_that_does_not_answer_in_time_says_how_to_give_it_longer(tmp_path, monkeypatch):
    """The advice was `prefect server start`: on the same Prefect home, that server meets
    what held this one up. A slow machine needs the start-up timeout raised."""
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    server = EmbeddedServer()
    server.log_path.parent.mkdir(parents=True)
    server.log_path.write_text(
        "--- evalflow process 1: server on port 2\nValueError: another server's\n"
        f"{server._log_header}\nstill migrating\n"
    )
    server.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(EmbeddedServerError) as failed:
        server.wait_ready(timeout_s=0.2)
    assert server.process is None  # stopped
    assert str(failed.value) == (
        f"the embedded Prefect server did not answer within 0.2 s (its log: "
        f"{server.log_path}); on a slow or busy machine give it longer: "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=0.4"
    )


def test_a_run_whose_server_does_not_start_says_why_and_that_nothing_was_stored(
    tmp_path, monkeypatch, capsys
):
    """It said `resume with: evalflow run ...` although nothing was stored."""
    from flows import run_control
    from flows.cli import main
    from tests.conftest import REPO

    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    for name in ("PREFECT_CLIENT_MAX_RETRIES", "PREFECT_API_SSL_CERT_FILE"):
        monkeypatch.setenv(name, "")  # what the command sets is put back after the test
        monkeypatch.delenv(name)
    why = "the embedded Prefect server exited with code 3 on port 1 before it answered: X"

    def fails(self, timeout_s=None):
        raise EmbeddedServerError(why)

    monkeypatch.setattr(run_control, "embedded_server_needed", lambda: True)
    monkeypatch.setattr(EmbeddedServer, "launch", lambda self: None)
    monkeypatch.setattr(EmbeddedServer, "start", lambda self: setattr(self, "started", True))
    monkeypatch.setattr(EmbeddedServer, "wait_ready", fails)
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    database = f"sqlite:///{tmp_path / 'results.db'}"
    assert main(["--database", database, "run", str(spec), "--limit", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"error: the run failed: EmbeddedServerError: {why}; nothing was stored"
    )
    assert "resume" not in err


def test_a_log_past_its_size_starts_afresh_keeping_the_last_one(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_server, "LOG_KEEP_BYTES", 10)
    log = tmp_path / "logs" / "prefect-server.log"
    log.parent.mkdir()
    log.write_text("x" * 11)
    with embedded_server._open_log(log) as out:
        out.write("new\n")
    assert log.read_text() == "new\n"
    assert log.with_name("prefect-server.log.1").read_text() == "x" * 11
    with embedded_server._open_log(log) as out:  # under the limit: appended
        out.write("more\n")
    assert log.read_text() == "new\nmore\n"


def test_servers_starting_together_on_a_fresh_home_all_start(tmp_path, monkeypatch, capfd):
    """Runs started together on a new machine each start a server on one fresh Prefect
    home; the first creates and migrates its database while the others wait for it
    (without the start-up lock, 2 of 3 exited with half-migrated tables)."""
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    servers = [EmbeddedServer() for _ in range(3)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout_s=300)
    finally:
        for server in servers:
            server.stop()
    assert capfd.readouterr() == ("", "")


def test_a_busy_answer_is_retried_by_prefects_client_within_half_a_second():
    """Prefect's server answers 503 when SQLite is busy; its client waits 2 s before the
    next try unless told otherwise. The embedded server tells it to retry at once."""
    import asyncio

    import httpx
    from prefect.client.base import PrefectHttpxAsyncClient

    calls: list[float] = []

    async def busy_once(scope, receive, send):
        calls.append(time.perf_counter())
        status = 503 if len(calls) == 1 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = embedded_server.with_retry_after(busy_once)
    transport = httpx.ASGITransport(app=app)

    async def get() -> httpx.Response:
        async with PrefectHttpxAsyncClient(transport=transport, base_url="http://s") as client:
            return await client.get("/api/health")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert len(calls) == 2
    assert calls[1] - calls[0] < 0.5  # Prefect's own back-off would be 2 s


def test_busy_answers_ask_for_longer_waits_while_they_keep_coming():
    """Four sweeps on one embedded database under load: Prefect's client spent its five
    tries 50 ms apart and a task's slot acquisition failed with "503 Service
    Unavailable" (CI). The wait now grows with the last second's busy answers, and is
    short again once they stop."""
    import asyncio

    now = [100.0]

    async def busy(scope, receive, send):
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = embedded_server.with_retry_after(busy, clock=lambda: now[0])

    async def wait_asked() -> float:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        await app({"type": "http"}, None, send)
        return float(dict(sent[0]["headers"])[b"retry-after"])

    waits = []
    for _ in range(30):
        waits.append(asyncio.run(wait_asked()))
        now[0] += 0.01
    assert waits[0] == embedded_server.RETRY_AFTER_S
    assert waits == sorted(waits) and waits[-1] == embedded_server.MAX_RETRY_AFTER_S
    now[0] += 2.0
    assert asyncio.run(wait_asked()) == embedded_server.RETRY_AFTER_S


def test_the_embedded_server_serves_prefects_app_through_the_retry_after_wrapper(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    server = EmbeddedServer()
    started: list[list[str]] = []

    def popen(command, **_):
        started.append(command)
        return SimpleNamespace(stdin=io.BytesIO())

    monkeypatch.setattr(embedded_server.subprocess, "Popen", popen)
    server.start()
    (command,) = started
    factory = command[command.index("--factory") + 1]
    assert factory == "flows.embedded_server:create_server_app"
    assert server.process.stdin.closed  # told to go


def test_commands_that_run_a_flow_use_the_embedded_server_not_prefects_own(tmp_path):
    """`retrain` (like `rescore`) runs a flow: without an API configured it must use the
    embedded server (log in a file, dies with the command), never Prefect's ephemeral
    one, which logs to the terminal and outlives a killed command."""
    import subprocess
    import sys

    env = os.environ | {
        "EVALFLOW_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("EVALFLOW_EMBEDDED_PREFECT_API_URL", None)
    database = f"sqlite:///{tmp_path / 'results.db'}"
    from evaluation.storage.db import make_engine, session_scope
    from tests.support.results_db import add_experiment, make_config, make_suite

    # one config's results: too few (config, suite) pairs for the flow to train, which
    # `retrain` refuses before Prefect starts unless that check is left out, as here
    with session_scope(make_engine(database)) as session:
        scores = {make_config("sim:1b", 0.0): {"exact_match": [1.0, 0.0]}}
        add_experiment(session, "demo", make_suite(2), scores, simulated=True)
    probe = (
        "import sys\n"
        "from flows.cli import main, selection\n"
        "selection._too_little_to_train_on = lambda args: None\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "--database", database, "retrain", "--include-simulated"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # too little data is not bad input (exit 2) but a state to fix by running more: exit 1
    assert done.returncode == 1, done.stderr
    *_, line = done.stderr.splitlines()  # after the flow's own log lines
    assert line.startswith("error: need successful generations for at least 3 (config, suite)")
    log = (tmp_path / "home" / "logs" / "prefect-server.log").read_text()
    assert log.startswith("--- evalflow process "), log
    # as docs/specs-and-sweeps.md says next to EVALFLOW_HOME: Prefect's database and the
    # start lock are in PREFECT_HOME, only the server's log in EVALFLOW_HOME
    assert {p.name for p in (tmp_path / "prefect").iterdir()} >= {
        "prefect.db",
        ".evalflow-server-start.lock",
    }
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["logs"]


def test_a_launched_server_that_is_never_started_writes_nothing_and_leaves(tmp_path):
    """`run` launches the server's imports beside its own checks; refused input then
    drops it: no process left, no log, no Prefect home (its imports create one), no
    database. In a process of its own, like the command (no Prefect imported there)."""

    script = (
        "import time\n"
        "from flows.embedded_server import EmbeddedServer\n"
        "server = EmbeddedServer()\n"
        "server.launch()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(4)  # well into Prefect's imports\n"
        "server.discard()\n"
    )
    done = _python_with_homes_in(tmp_path, script, timeout=60)
    assert not alive(int(done.stdout))
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "prefect").exists()


def _processes_with_home(home: Path) -> list[int]:
    """Processes whose environment names ``home`` as PREFECT_HOME."""
    wanted = f"PREFECT_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


BAD_METRIC = (
    f"name: bad\nsuite: {Path(__file__).parents[2] / 'benchmarks/suites/qa-short.jsonl'}\n"
    "models: [sim-small:1b]\nmetrics: [exact_mach]\n"
    'hosts: [{name: sim, url: "simulated://local", slots: 1, kind: simulated}]\n'
)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "missing.yaml"],
        ["-v", "--database", "sqlite:///x.db", "run"],
        ["run", "bad.yaml"],
    ],
)
def test_evalflow_run_refuses_bad_input_before_launching_the_server(tmp_path, argv):
    """A refused spec (missing, a usage error, an unknown metric) exits 2 before the
    server launches: its seconds of imports do not take the CPU from the refusal, and
    nothing is left (no process, no log, no Prefect home)."""
    (tmp_path / "bad.yaml").write_text(BAD_METRIC)
    env = os.environ | {
        "EVALFLOW_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    script = (
        "import sys\n"
        "from flows import embedded_server\n"
        "launch = embedded_server.EmbeddedServer.launch\n"
        "def launch_and_tell(self):\n"
        "    print('launched', flush=True)\n"
        "    launch(self)\n"
        "embedded_server.EmbeddedServer.launch = launch_and_tell\n"
        "from flows.cli import console_main\n"
        "sys.argv = ['evalflow', *sys.argv[1:]]\n"
        "sys.exit(console_main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "launched" not in done.stdout
    assert "Traceback" not in done.stderr
    if argv[-1] == "bad.yaml":
        assert "unknown metric 'exact_mach'" in done.stderr
    assert _processes_with_home(tmp_path / "prefect") == []
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "prefect").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "spec.yaml"], "run"),
        (["-v", "--database", "sqlite:///x.db", "run", "spec.yaml"], "run"),
        (["--database=sqlite:///x.db", "-q", "run", "spec.yaml"], "run"),
        (["--database", "run", "experiments"], "experiments"),
        (["run", "--help"], None),
        (["-h"], None),
        ([], None),
    ],
)
def test_the_verb_is_read_past_the_global_options(argv, expected):
    from flows.cli import verb

    assert verb(argv) == expected


def test_a_new_home_gets_its_database_from_the_schema_snapshot(tmp_path, monkeypatch):
    """A fresh Prefect home's database is the snapshot (loaded in milliseconds), not a
    run of every migration: table by table the same SQL text as the snapshot, whose
    constraint order the migrations themselves do not reproduce."""
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", raising=False)
    server = EmbeddedServer()
    server.start()
    try:
        server.wait_ready(timeout_s=120)
    finally:
        server.stop()
    seeded = tmp_path / "seeded.db"
    with sqlite3.connect(seeded) as connection:
        connection.executescript(prefect_schema.SNAPSHOT.read_text(encoding="utf-8"))
    connection.close()
    assert table_sql(tmp_path / "prefect" / "prefect.db") == table_sql(seeded)


def table_sql(database) -> set[tuple[str, str]]:
    connection = sqlite3.connect(database)
    try:
        return set(connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
    finally:
        connection.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_database_at_the_snapshots_revision_is_not_migrated_on_start(tmp_path):
    """The server process seeds a new home's database, then turns Prefect's migrations
    on start off (nothing to do at the snapshot's revision); a database at another
    revision is migrated as Prefect would."""
    import subprocess
    import sys

    script = (
        "import prefect.settings\n"
        "from flows.embedded_server import prepare_database\n"
        "prepare_database()\n"
        "print(bool(prefect.settings.PREFECT_API_DATABASE_MIGRATE_ON_START))\n"
    )
    env = os.environ | {"PREFECT_HOME": str(tmp_path)}
    env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)

    def migrates_on_start() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert migrates_on_start() == "False"  # seeded just now
    assert migrates_on_start() == "False"  # found at the snapshot's revision
    with sqlite3.connect(tmp_path / "prefect.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'older'")
    connection.close()
    assert migrates_on_start() == "True"


_CA_FILE_OF_A_CLIENT = """
import ssl, sys
from flows.embedded_server import use_api
use_api(sys.argv[1])
from prefect.client.orchestration import get_client
loaded = []
real = ssl.create_default_context
def recording(*args, cafile=None, **kwargs):
    loaded.append(cafile)
    return real(*args, cafile=cafile, **kwargs)
ssl.create_default_context = recording
get_client(sync_client=True)  # what every task run of a flow does
print(*loaded)
"""


def _ca_file_of_a_prefect_client(api_url: str, env: dict[str, str]) -> str:
    """In a fresh process (no test's Prefect settings context): the CA file a Prefect
    client loads after ``use_api(api_url)``."""
    done = subprocess.run(
        [sys.executable, "-c", _CA_FILE_OF_A_CLIENT, api_url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_prefect_clients_of_the_plain_http_api_skip_parsing_certifis_bundle(tmp_path):
    import certifi

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SSL_CERT"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")

    cafile = _ca_file_of_a_prefect_client("http://127.0.0.1:9/api", env)
    assert cafile != certifi.where()
    assert Path(cafile).read_text().count("BEGIN CERTIFICATE") == 1
    # A user's own CA file, or an https API, is left alone.
    mine = env | {"PREFECT_API_SSL_CERT_FILE": certifi.where()}
    assert _ca_file_of_a_prefect_client("http://127.0.0.1:9/api", mine) == certifi.where()
    assert _ca_file_of_a_prefect_client("https://prefect.example/api", env) == certifi.where()


def test_a_proxy_in_the_environment_is_not_used_for_the_loopback_server(tmp_path, monkeypatch):
    """A dead proxy for the web (HTTP_PROXY ...) made every run's calls to its embedded
    server on 127.0.0.1 go through it: each failed, and the run gave up after a minute.
    Launching the server keeps loopback off the proxies, for this process (Prefect's
    httpx client, the readiness probe) and its children, keeping the user's NO_PROXY."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import httpx

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("NO_PROXY", "corp.example")
    monkeypatch.delenv("no_proxy", raising=False)
    children: list[dict[str, str]] = []

    def popen(command, env, **_):
        children.append(env)
        return SimpleNamespace(stdin=io.BytesIO())

    monkeypatch.setattr(embedded_server.subprocess, "Popen", popen)
    EmbeddedServer().launch()

    (child,) = children
    for env in (os.environ, child):
        for name in ("NO_PROXY", "no_proxy"):
            assert env[name].split(",") == ["corp.example", "127.0.0.1", "localhost", "::1"]
    server = HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        assert httpx.get(url, timeout=5).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_embedded_server_runs_only_the_services_a_run_needs(monkeypatch):
    """Prefect's ephemeral mode runs the task run recorder, automations (triggers and
    actions), the event persister and the event stream; the embedded server keeps only
    the recorder (task run states arrive as events): flows/embedded_server.SERVICES_OFF.
    Prefect's own switches, read as its server reads them from the environment it gets."""
    from prefect.settings import Settings

    with mock.patch.dict(os.environ, embedded_server.server_environment(), clear=True):
        settings = Settings()
    services = settings.server.services
    assert services.task_run_recorder.enabled
    assert not services.triggers.enabled  # ReactiveTriggers, Actions, proactive triggers
    assert not services.event_persister.enabled  # and with it the events vacuum
    assert not settings.server.events.stream_out_enabled  # the Distributor
    assert not settings.server.logs.stream_out_enabled  # the LogDistributor (Prefect's default)
    assert not services.event_logger.enabled  # (Prefect's default)

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "true")  # yours wins
    assert (
        embedded_server.server_environment()["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "true"
    )


def test_the_embedded_servers_app_is_built_without_a_full_garbage_collection(tmp_path):
    """Prefect's "final" app (PREFECT__SERVER_FINAL) ends its construction with a full
    collection that, with FastAPI >= 0.137, frees ~100 objects for ~0.25 s of CPU of every
    start. Built in a process of its own, as the launcher builds it, with automatic
    collections off: any collection seen is one the construction asked for."""
    probe = (
        "import gc, os, sys\n"
        "from flows import embedded_server\n"
        "os.environ.clear()\n"
        "os.environ.update(embedded_server.server_environment())\n"
        "import prefect.server.api.server\n"
        "gc.disable()\n"
        "asked = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and asked.append(info))\n"
        "embedded_server.create_server_app()\n"
        "print(len(asked))\n"
    )
    done = _python_with_homes_in(tmp_path, probe, timeout=300)
    assert done.stdout.split()[-1] == "0"


def _python_with_homes_in(
    tmp_path: Path, script: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python -c script`` with EVALFLOW_HOME and PREFECT_HOME under ``tmp_path``; it
    must exit 0 (its stderr is the failure's message)."""
    env = os.environ | {
        "EVALFLOW_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done
