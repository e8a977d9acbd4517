"""Running for real: a Prefect server on PostgreSQL, a process work pool, two workers, the
deployments registered with `evalflow deploy`, two concurrent sweeps triggered with
``run_deployment`` against two stand-in Ollama hosts (separate processes counting their
own in-flight peaks), and the results in PostgreSQL.

Checks: every generation stored exactly once; no host ever saw more requests in flight
than its slots; both workers ran a sweep; the nightly and weekly deployments carry their
schedules and the server's scheduler has created the nightly's runs; `evalflow health`
sees the server, the database and both hosts.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); skipped when it is not
there. Creates and drops its own databases; stops every process it starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import create_engine, text

from evaluation.spec import HostSpec
from tasks.adapters.host_limits import host_limit_name
from tests.conftest import REPO
from tests.support.standin_process import StandInProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
BIN = Path(sys.executable).parent
MODELS = ("llama3.2:3b", "qwen2.5:0.5b")
HOSTS = {"gpu-a": 3, "gpu-b": 2}  # name -> slots
LATENCY_MS = 25.0
SWEEPS = ("it-sweep-a", "it-sweep-b")
N_CASES = 36  # qa-short


def _connect(dbname: str = "postgres"):
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=3
    )
    connection.autocommit = True
    return connection


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    """Two fresh PostgreSQL databases: Prefect's and evalflow's results."""
    try:
        admin = _connect()
    except Exception as exc:  # psycopg2.OperationalError and friends
        pytest.skip(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} as {PG_USER}: {exc}")
    tag = uuid.uuid4().hex[:8]
    names = {"prefect": f"evalflow_it_{tag}_prefect", "results": f"evalflow_it_{tag}_results"}
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the test starts, each in its own session, stopped at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Path:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            self.started[name] = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return log

    def stop(self, name: str) -> None:
        process = self.started.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.started)):
            self.stop(name)


def run_cli(argv: list[str], env: dict[str, str], timeout_s: float = 120) -> str:
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def cluster(databases, tmp_path_factory) -> Iterator[dict]:
    """Server, pool, deployments, two stand-in hosts and two workers."""
    root = tmp_path_factory.mktemp("cluster")
    processes = Processes(root)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    results_url = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{databases['results']}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVALFLOW_"))}
    base |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    server_env = base | {
        "PREFECT_HOME": str(root / "server-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
            f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{databases['prefect']}"
        ),
        "PREFECT_UI_ENABLED": "false",
    }
    client_env = base | {
        "PREFECT_HOME": str(root / "client-home"),
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "EVALFLOW_HOME": str(root / "evalflow-home"),
        "EVALFLOW_DATABASE_URL": results_url,
    }
    hosts = {
        name: StandInProcess(free_port(), slots=slots, latency_ms=LATENCY_MS, models=MODELS)
        for name, slots in HOSTS.items()
    }
    try:
        processes.start(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
        )
        for host in hosts.values():  # while the server migrates its database
            host.start()
        wait_until(lambda: _healthy(api), 120, "the Prefect server")
        prefect = str(BIN / "prefect")
        run_cli([prefect, "work-pool", "create", "evalflow", "--type", "process"], client_env)
        worker_logs = {  # they start while the deployments are registered
            name: processes.start(
                name,
                [prefect, "worker", "start", "--pool", "evalflow", "--name", name, "--limit", "1"],
                client_env,
            )
            for name in ("worker-1", "worker-2")
        }
        run_cli([str(BIN / "evalflow"), "deploy", "--pool", "evalflow"], client_env)
        with temporary_settings({PREFECT_API_URL: api}):
            wait_until(lambda: asyncio.run(_online_workers()) >= 2, 90, "two workers online")
            yield {
                "api": api,
                "env": client_env,
                "results_url": results_url,
                "hosts": hosts,
                "worker_logs": worker_logs,
                "root": root,
            }
    finally:
        processes.stop_all()
        for host in hosts.values():
            host.stop()


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _online_workers() -> int:
    async with get_client() as client:  # explicit offset and limit: null is refused (422)
        workers = await client.read_workers_for_work_pool("evalflow", offset=0, limit=10)
    return sum(1 for w in workers if str(w.status).lower().endswith("online"))


def write_spec(root: Path, hosts: dict[str, StandInProcess]) -> Path:
    spec = {
        "name": "it-sweep",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": list(MODELS),
        "grid": {"temperature": [0.0], "num_predict": [16]},
        "hosts": [
            {"name": name, "url": host.url, "slots": HOSTS[name], "kind": "ollama"}
            for name, host in hosts.items()
        ],
        "limits": {"max_attempts": 3},
    }
    path = root / "it-sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


async def _trigger_and_wait(spec: Path, results_url: str, timeout_s: float) -> list:
    runs = []
    for name in SWEEPS:
        runs.append(
            await run_deployment(
                "evaluate/on-demand",
                parameters={"spec_path": str(spec), "experiment": name, "database": results_url},
                timeout=0,
            )
        )
    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while True:
            states = [await client.read_flow_run(r.id) for r in runs]
            if all(s.state and s.state.is_final() for s in states):
                return states
            if time.monotonic() > deadline:
                raise AssertionError(f"sweeps not finished: {[s.state for s in states]}")
            await asyncio.sleep(1.0)


DEPLOYMENTS = ("evaluate/on-demand", "nightly-regression/nightly", "retrain-selector/weekly")


async def _server_objects(urls: dict[str, str]) -> tuple[dict, dict]:
    """The deployments, the per-host limits (hosts' ``urls`` by name) and the nightly's
    scheduled runs."""
    async with get_client() as client:
        deployments = {n: await client.read_deployment_by_name(n) for n in DEPLOYMENTS}
        limits = {
            name: (
                await client.read_global_concurrency_limit_by_name(
                    host_limit_name(HostSpec(name, urls[name]))
                )
            ).limit
            for name in HOSTS
        }
        nightly_id = deployments["nightly-regression/nightly"].id
        scheduled = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[nightly_id])),
            limit=10,
        )
    return deployments, limits, scheduled


def worker_output(cluster: dict, tail: int = 6000) -> str:
    """The end of each worker's output (flow run logs included), for failure messages."""
    return "\n".join(
        f"--- {name} ---\n{log.read_text()[-tail:]}" for name, log in cluster["worker_logs"].items()
    )


def test_two_workers_two_hosts_postgres(cluster):
    hosts = cluster["hosts"]
    spec = write_spec(cluster["root"], hosts)
    started = time.monotonic()
    runs = asyncio.run(_trigger_and_wait(spec, cluster["results_url"], timeout_s=240))
    elapsed = time.monotonic() - started
    assert all(r.state.is_completed() for r in runs), worker_output(cluster)

    # every generation stored exactly once, all successful, scored
    expected = len(MODELS) * N_CASES
    engine = create_engine(cluster["results_url"])
    with engine.connect() as db:
        per_experiment = dict(
            db.execute(
                text(
                    "SELECT e.name, count(*) FROM generations g "
                    "JOIN experiments e ON e.id = g.experiment_id "
                    "WHERE g.status = 'ok' GROUP BY e.name"
                )
            ).all()
        )
        duplicates = db.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM generations GROUP BY experiment_id, "
                "config_hash, case_uid, sample_index HAVING count(*) > 1) d"
            )
        ).scalar_one()
        total = db.execute(text("SELECT count(*) FROM generations")).scalar_one()
        scored = db.execute(text("SELECT count(DISTINCT generation_id) FROM scores")).scalar_one()
        telemetry = db.execute(
            text("SELECT source, vram_bytes FROM config_telemetry ORDER BY vram_bytes")
        ).all()
    engine.dispose()
    assert per_experiment == dict.fromkeys(SWEEPS, expected)
    assert duplicates == 0 and total == 2 * expected and scored == total
    # per config: VRAM from the hosts' /api/ps; no local GPU here, so NVML is unavailable
    assert len(telemetry) == 2 * len(MODELS)
    assert all(source == "unavailable" and vram > 2**31 for source, vram in telemetry)

    # no host oversubscribed, and each generation was requested once
    stats = {name: host.stats() for name, host in hosts.items()}
    for name, s in stats.items():
        assert s["max_in_flight"] <= HOSTS[name], (name, s)
        assert s["requests"] > 0, (name, s)
    assert sum(s["requests"] for s in stats.values()) == 2 * expected

    # both workers ran a sweep
    ran = {
        worker: {str(r.id) for r in runs if f"submitting flow run '{r.id}'" in log.read_text()}
        for worker, log in cluster["worker_logs"].items()
    }
    assert all(ran.values()), ran
    assert set().union(*ran.values()) == {str(r.id) for r in runs}

    # the deployments, their schedules and the per-host limits on the server
    with temporary_settings({PREFECT_API_URL: cluster["api"]}):
        urls = {name: host.url for name, host in hosts.items()}
        deployments, limits, scheduled = asyncio.run(_server_objects(urls))
    crons = {name: [s.schedule.cron for s in d.schedules] for name, d in deployments.items()}
    assert crons == {
        "evaluate/on-demand": [],
        "nightly-regression/nightly": ["0 2 * * *"],
        "retrain-selector/weekly": ["0 4 * * 0"],
    }
    assert (
        deployments["nightly-regression/nightly"]
        .parameters["spec_path"]
        .endswith("benchmarks/sweeps/demo-simulated.yaml")
    )
    assert limits == HOSTS
    # the server's scheduler has put the next nights on the calendar (PostgreSQL)
    assert scheduled and all(r.auto_scheduled for r in scheduled)
    assert {(r.expected_start_time.hour, r.expected_start_time.minute) for r in scheduled} == {
        (2, 0)
    }

    # the health entry point sees the server, PostgreSQL and both hosts
    health = run_cli([str(BIN / "evalflow"), "health", str(spec)], cluster["env"], timeout_s=60)
    assert health.startswith("healthy: prefect api, database, spec, host gpu-a, host gpu-b")

    print(
        f"\n2 sweeps x {expected} generations on 2 workers in {elapsed:.1f} s; "
        f"max in flight { ({n: s['max_in_flight'] for n, s in stats.items()}) }; "
        f"model loads { ({n: s['model_loads'] for n, s in stats.items()}) }"
    )
