"""The embedded Prefect API server of a command, tied to that command's life.

Prefect starts its ephemeral server as a plain child process
(``prefect.server.api.server.SubprocessASGIServer``) and stops it from an ``atexit`` hook,
so a ``kill -9`` of the command leaves the server running, holding its port and ~230 MB.
Here the command starts the same server itself (the same uvicorn command line and
ephemeral mode Prefect uses; :func:`server_environment` says where they differ) through
a small launcher that dies with its parent: Linux's parent-death signal
(``prctl(PR_SET_PDEATHSIG)``) for an immediate SIGTERM, and on every platform a watchdog
thread that notices the parent is gone, asks uvicorn to shut down and exits for good 3 s
later. The command then points ``PREFECT_API_URL`` at it, so every
Prefect client of the process uses this one server and none starts its own.

The server's own output (Prefect's server services, uvicorn) goes to
``<evalflow home>/logs/prefect-server.log``, not to the command's terminal: concurrent
runs share one SQLite file (that shared counter is what holds host slots across them),
and Prefect's services log a traceback whenever a write meets another server's
("database is locked"; they retry the write). That is the server's business, not the
user's sweep output; a failure to start names the file. Servers on one Prefect home
start one at a time (a lock held from the app's start-up until it answers): the first
creates and migrates the database, and two doing that at once broke each other.

It runs only the server services a run needs (``SERVICES_OFF`` says which it does not,
and why). Prefect's ephemeral mode already leaves out the scheduler, late runs, foreman,
repossessor, cancellation cleanup, pause expirations and the vacuums but the events'
(prefect/server/services/base.py ``RunInEphemeralServers`` and the perpetual services
marked ``run_in_ephemeral``); of what it keeps, the task run recorder stays: a task
run's states reach the server as events, and it writes them to the task run (what the
UI and Prefect's API show of the run's tasks). Docket's worker (the background tasks of
some API calls, e.g. a cancelled flow run's task runs) runs in every Prefect server, with
no setting to turn it off; so does telemetry unless ``PREFECT_SERVER_ANALYTICS_ENABLED``
is false, which evalflow sets unless you do.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from flows.loopback import bypass_proxies_for_loopback

# Runs in the server process before uvicorn:
# argv = [-c, parent pid, health URL, log path, uvicorn args...]. It imports Prefect's
# server at once, then waits for "go" on stdin (EOF: the command ended without needing
# it: exit, having written nothing) before it opens its log and the database.
_LAUNCHER = """
import os, signal, sys, threading, time
parent, health, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != parent:
    sys.exit(0)
def watch():
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(3)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
import fcntl, traceback, urllib.request
try:
    from evaluation.run._heap import fewer_collections
    fewer_collections()  # before the imports: they make millions of lasting objects
    import prefect.server.api.server  # the app's imports: before the go, outside the lock
    from flows.embedded_server import prepare_database, start_lock_path
    failure = None
except BaseException:
    failure = traceback.format_exc()
if sys.stdin.readline() != "go\\n":
    sys.exit(0)
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.dup2(log, 1)
os.dup2(log, 2)
if failure:
    sys.stderr.write(failure)
    sys.exit(1)
lock = os.open(start_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)  # dropped by the kernel if this process dies
prepare_database()
def unlock_when_up():
    try:
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
    finally:
        os.close(lock)
threading.Thread(target=unlock_when_up, daemon=True).start()
sys.argv = ["uvicorn", *sys.argv[4:]]
import runpy
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""

START_LOCK_NAME = ".evalflow-server-start.lock"
LOG_NAME = "prefect-server.log"
PLAIN_HTTP_CA_NAME = "evalflow-plain-http-ca.pem"
LOG_KEEP_BYTES = 10 * 1024 * 1024  # past this, the log starts afresh (the old one kept as .1)
SERVICES_OFF = {
    # Automations: ReactiveTriggers (every event, one at a time), Actions and the
    # proactive triggers' evaluation (every 5 s: reads the automations and deletes closed
    # buckets, a write on the SQLite file every run shares). A run defines no
    # automation, and the embedded server has no API but the run's own and dies with
    # it; automations belong on a Prefect server (docs/running-for-real.md).
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    # Event persister (and with it the hourly events vacuum): writes every event to the
    # events tables, for the UI's event feed and Prefect's events API. No evalflow
    # command reads events; task run states, flow runs, logs and artifacts are written
    # without it.
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    # Event distributor: streams events out to websocket subscribers (`prefect events
    # stream`, the UI, waiters on task runs sent to task workers or on deployment runs).
    # Nothing subscribes to the embedded server: a run reads its own flow run's state to
    # see a cancel, and its task futures are in-process.
    "PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED": "false",
}
"""Prefect settings that turn off, in the embedded server only, the services a run does
not use; each is set unless the environment sets it (``...=true`` turns one back on)."""
MIN_STARTUP_TIMEOUT_S = 60.0
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
# What a server that did not start says of why: a traceback's last line
# ("sqlalchemy.exc.OperationalError: ... unable to open database file"), else a log record
# at ERROR ("| ERROR   | uvicorn.error - Application startup failed. Exiting.").
_WHY_IT_FAILED = (
    re.compile(r"^[\w.]+(Error|Exception)\b.*$"),
    re.compile(r"^.*\| (ERROR|CRITICAL) +\| .*$"),
)
STOP_TIMEOUT_S = 2.0
RETRY_AFTER_S = 0.05  # what a busy embedded server first asks Prefect's client to wait
MAX_RETRY_AFTER_S = 1.0
CLIENT_MAX_RETRIES = "30"
"""Prefect's client gives up after PREFECT_CLIENT_MAX_RETRIES (5) busy answers; at 50 ms
apart that was a quarter of a second of patience, and four sweeps sharing one embedded
database under load failed a task's slot acquisition ("503 Service Unavailable"). With
the wait growing with the server's recent busy answers, 30 tries last seconds."""
_SERVER_PROCESS_CONTEXT: list[object] = []  # contexts the server process keeps entered


class EmbeddedServerError(RuntimeError):
    """The embedded Prefect server did not start."""


def embedded_server_needed() -> bool:
    """True when Prefect would start its ephemeral server: no API URL configured (by the
    environment, a profile or a test harness) and ephemeral mode allowed."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return not settings.api.url and settings.server.ephemeral.enabled


class EmbeddedServer:
    """Prefect's API server (SQLite in PREFECT_HOME, no UI) as a child that cannot outlive
    this process. ``launch`` starts its imports (seconds of CPU) while the command does
    other work and creates nothing; ``start`` lets it open the database and serve;
    ``wait_ready`` blocks until it answers; ``discard`` drops an unneeded launch."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = server_log_path()
        self.started = False
        self._prefect_home_existed = True

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def _log_header(self) -> str:
        """The line that opens this server's part of the shared log."""
        return f"--- evalflow process {os.getpid()}: server on port {self.port}"

    def launch(self) -> None:
        """Start the server process up to its imports; nothing is created until ``start``.
        Does not import Prefect here: that is what the launch overlaps."""
        bypass_proxies_for_loopback()  # its own readiness probe inherits the environment
        env = server_environment()
        prefect_package = importlib.util.find_spec("prefect")
        assert prefect_package is not None and prefect_package.origin is not None
        app_dir = str(Path(prefect_package.origin).resolve().parent.parent)
        uvicorn = [
            *("--app-dir", app_dir, "--factory", f"{__name__}:{create_server_app.__name__}"),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--log-level", "error", "--lifespan", "on"),
        ]
        self._prefect_home_existed = prefect_home().exists()
        health = f"{self.api_url}/health"
        launcher = [_LAUNCHER, str(os.getpid()), health, str(self.log_path)]
        self.process = subprocess.Popen(
            [sys.executable, "-c", *launcher, *uvicorn],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,  # until "go": then its log (see _LAUNCHER)
            stderr=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C is for the command, which
            # then stops the server after it has recorded the interruption through it.
            start_new_session=True,
        )

    def start(self) -> None:
        """Let the launched server (launched now if it was not) create or open its
        database and serve. Returns at once."""
        if self.process is None:
            self.launch()
        assert self.process is not None and self.process.stdin is not None
        with _open_log(self.log_path) as log:
            log.write(f"{self._log_header}\n")
        self.started = True
        with contextlib.suppress(BrokenPipeError):  # it died: wait_ready names its log
            self.process.stdin.write(b"go\n")
            self.process.stdin.close()

    def discard(self) -> None:
        """Drop a launch that was never started: the process exits having written
        nothing but its log line."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        process.kill()
        process.wait()
        # Its imports create Prefect's home folder; a command that wrote nothing leaves
        # no empty folder behind (unless Prefect runs in this process and may use it).
        if not self._prefect_home_existed and "prefect" not in sys.modules:
            with contextlib.suppress(OSError):
                prefect_home().rmdir()

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Poll ``/api/health`` until it answers 200 (the database is migrated by then),
        for PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS but at least a minute."""
        from prefect.settings import get_current_settings

        assert self.process is not None, "start() first"
        if timeout_s is None:
            configured = get_current_settings().server.ephemeral.startup_timeout_seconds
            timeout_s = max(float(configured), MIN_STARTUP_TIMEOUT_S)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"the embedded Prefect server exited with code {self.process.returncode} "
                    f"on port {self.port} before it answered{self._error_in_log()} (its "
                    f"log: {self.log_path})"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(
            f"the embedded Prefect server did not answer within {timeout_s:g} s"
            f"{self._error_in_log()} (its log: {self.log_path}); on a slow or busy machine "
            f"give it longer: {STARTUP_TIMEOUT_ENV}={2 * timeout_s:g}"
        )

    def _error_in_log(self) -> str:
        """ ": <the last error line>" of this server's part of its log, "" if it has none.
        (Advice to run `prefect server start` instead was wrong: that server opens the
        same database in the same Prefect home, and fails as this one did.)"""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            own = text.rpartition(self._log_header)[2].splitlines()
            for pattern in _WHY_IT_FAILED:
                if found := [line.strip() for line in own if pattern.match(line.strip())]:
                    return f": {found[-1]}"
        return ""

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_environment() -> dict[str, str]:
    """The environment the embedded server starts with: this process's, made Prefect's
    ephemeral server's (no UI, only the services of ephemeral mode) less the services in
    ``SERVICES_OFF``, without block registration and without an API URL of its own.

    Not ``PREFECT__SERVER_FINAL``, which Prefect's own ephemeral launcher sets (and
    ``prefect server start`` does not): the "final" app drops its routers' originals to
    free the copies FastAPI < 0.137 made of them, then runs a full garbage collection.
    With the pinned FastAPI (0.150) there is nothing to drop, and the collection freed
    ~100 objects for 0.22-0.25 s of CPU, a twentieth of every server's start
    (benchmarks/perf/README.md)."""
    env = os.environ | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}
    # Registering Prefect's block types costs ~1 s per start (3 s on a new home) and
    # no evalflow flow uses a block; `prefect server start` still registers them.
    env.setdefault("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "0")
    for name, value in SERVICES_OFF.items():
        env.setdefault(name, value)
    env.pop("PREFECT_API_URL", None)
    return env


def create_server_app() -> Callable[..., Awaitable[None]]:
    """Prefect's server app (what ``prefect server start`` serves), its retryable 503s
    answered with a short Retry-After (:func:`with_retry_after`). What the app's imports
    and construction leave alive lives as long as the server: frozen out of the garbage
    collector's walks (``evaluation.run._heap``: the launcher made young collections
    rarer before those imports)."""
    import gc

    from prefect.server.api.server import create_app

    app = with_retry_after(create_app())
    gc.freeze()
    return app


def with_retry_after(
    app: Callable[..., Awaitable[None]], clock: Callable[[], float] = time.monotonic
) -> Callable[..., Awaitable[None]]:
    """``app`` (ASGI), its 503 answers carrying a short ``Retry-After``.

    Prefect's server answers 503 when a SQLite write meets another (SQLITE_BUSY), and
    Prefect's client then waits 2**n s unless the answer carries Retry-After
    (prefect/client/base.py, ``_send_with_retry``). The chunks of a sweep start their task
    runs at about the same moment, so each chunk boundary left the host's slots idle for
    ~1.8 s (benchmarks/perf/sweep_e2e.py); retried after 50 ms, it costs milliseconds.
    The wait grows with the busy answers of the last second (``RETRY_AFTER_S`` each, up
    to ``MAX_RETRY_AFTER_S``), so that many writers backing off together do not spend
    their tries at once.
    """
    recent: deque[float] = deque()

    def retry_after() -> bytes:
        now = clock()
        while recent and recent[0] < now - 1.0:
            recent.popleft()
        recent.append(now)
        return f"{min(MAX_RETRY_AFTER_S, RETRY_AFTER_S * len(recent)):.2f}".encode()

    async def app_with_retry_after(scope, receive, send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_retry_after(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = [*message.get("headers", []), (b"retry-after", retry_after())]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_retry_after)

    return app_with_retry_after


def use_api(url: str) -> None:
    """Point this process's Prefect settings at ``url`` (even if Prefect is imported)."""
    bypass_proxies_for_loopback()
    os.environ["PREFECT_API_URL"] = url
    if url.startswith("http://") and "PREFECT_API_SSL_CERT_FILE" not in os.environ:
        os.environ["PREFECT_API_SSL_CERT_FILE"] = str(plain_http_ca_file())
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def plain_http_ca_file() -> Path:
    """A CA file of one certificate (certifi's first) for Prefect's clients of a plain-HTTP
    API. Every Prefect client builds a verified SSL context from PREFECT_API_SSL_CERT_FILE,
    else from certifi's whole bundle: ~15 ms of CPU per client, and a run creates one or
    more per task run (~0.5 s of a sweep's start and end). An http:// URL never uses it."""
    import certifi

    path = prefect_home() / PLAIN_HTTP_CA_NAME
    if not path.exists():
        bundle = Path(certifi.where()).read_text()
        end = "-----END CERTIFICATE-----\n"
        first = bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)]
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(first)
        os.replace(partial, path)  # concurrent runs: each writes the same whole file
    return path


def server_log_path() -> Path:
    """Where embedded servers write their own log: one file for every run on this home."""
    from evaluation.settings import evalflow_home

    return evalflow_home() / "logs" / LOG_NAME


def start_lock_path() -> Path:
    """The lock that lets one server at a time start on this Prefect home: a server's
    start-up creates or migrates the database, and two at once on a fresh home broke
    each other (2 of 3 exited: "no such column", "No such index")."""
    from prefect.settings import get_current_settings

    home = Path(get_current_settings().home)
    home.mkdir(parents=True, exist_ok=True)
    return home / START_LOCK_NAME


def prepare_database() -> None:
    """In the server process, under the start-up lock: a new home's SQLite database is
    created from the schema snapshot instead of by Prefect's migrations (9–22 s), and a
    database already at the snapshot's revision is not migrated on start (alembic's
    check of ~150 migration scripts, ~0.3 s of every start)."""
    import prefect
    from prefect.settings import (
        PREFECT_API_DATABASE_MIGRATE_ON_START,
        get_current_settings,
        temporary_settings,
    )

    from flows.prefect_schema import is_current, seed_fresh_database

    url = get_current_settings().server.database.connection_url
    if url is None:
        return
    seed_fresh_database(prefect.__version__, url.get_secret_value())
    if is_current(prefect.__version__, url.get_secret_value()):
        # Held for the rest of the server process's life (a context manager that is
        # collected would leave it).
        no_migrations = temporary_settings(updates={PREFECT_API_DATABASE_MIGRATE_ON_START: False})
        no_migrations.__enter__()
        _SERVER_PROCESS_CONTEXT.append(no_migrations)


def _open_log(path: Path):
    """``path`` opened for appending (runs at once append to it line by line); a log
    past LOG_KEEP_BYTES is moved to ``<name>.1`` first, so it never grows without end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_KEEP_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    return path.open("a", encoding="utf-8")


def prefect_home() -> Path:
    """Prefect's home folder as Prefect reads it (a profile cannot move it: the profiles
    live there), without importing Prefect."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
