"""Prefect's own server, scheduler, UI and CLI with this project's pinned versions: a real
`prefect server start` (its own PREFECT_HOME, a free port, SQLite), the worker
deployments registered with `evalflow deploy` and the served ones with `evalflow serve`
on the same server, a short interval schedule on the served nightly deployment.

Checks: the deployments of both kinds keep what they are (pool, pull steps); the
server's scheduler creates scheduled runs; the first one completes through
`evalflow serve` under a name that says which experiment it is; its report is a markdown
artifact; Prefect's CLI lists flows, runs, deployments, work pools and artifacts (exit 0).

Stops every process it starts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.run_names import run_name
from tests.conftest import REPO
from tests.integration.test_postgres_workers import Processes, free_port, run_cli, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

BIN = Path(sys.executable).parent
PREFECT, EVALFLOW = str(BIN / "prefect"), str(BIN / "evalflow")
NIGHTLY = "nightly-regression/nightly-served"
KINDS = {  # deployment -> work pool (None: served by `evalflow serve`)
    "evaluate/on-demand": "evalflow",
    "nightly-regression/nightly": "evalflow",
    "retrain-selector/weekly": "evalflow",
    "evaluate/on-demand-served": None,
    NIGHTLY: None,
    "retrain-selector/weekly-served": None,
}
INTERVAL = timedelta(hours=1)  # runs at the anchor (seconds away), +1 h, ...: none overlap
SPEC = {  # the served nightly's sweep: two simulated models, 72 generations
    "name": "it-nightly",
    "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
    "models": ["sim-small:1b", "sim-large:8b"],
    "grid": {"temperature": [0.0], "num_predict": [16]},
    "hosts": [{"name": "sim", "url": "simulated://local", "slots": 4, "kind": "simulated"}],
}


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    """`prefect server start` on SQLite with a 1 s scheduler loop, the worker deployments
    (`evalflow deploy`) and `evalflow serve` running."""
    root = tmp_path_factory.mktemp("prefect-server")
    processes = Processes(root)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVALFLOW_"))}
    base |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    server_env = base | {
        "PREFECT_HOME": str(root / "server-home"),
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    }
    client_env = base | {
        "PREFECT_HOME": str(root / "client-home"),
        "PREFECT_API_URL": api,
        "EVALFLOW_HOME": str(root / "evalflow-home"),
        "EVALFLOW_DATABASE_URL": f"sqlite:///{root / 'results.db'}",
        "COLUMNS": "250",  # the CLI's tables, unwrapped
    }
    try:
        log = processes.start(
            "server",
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
        )
        wait_until(lambda: _healthy(f"{api}/health"), 240, "the Prefect server")
        run_cli([PREFECT, "work-pool", "create", "evalflow", "--type", "process"], client_env)
        run_cli([EVALFLOW, "deploy", "--pool", "evalflow"], client_env)
        spec = root / "it-nightly.yaml"
        spec.write_text(yaml.safe_dump(SPEC))
        metrics_port = free_port()
        serve_log = processes.start(
            "serve",
            [EVALFLOW, "serve", "--nightly-spec", str(spec), "--metrics-port", str(metrics_port)],
            client_env,
        )
        with temporary_settings({PREFECT_API_URL: api}):
            wait_until(lambda: asyncio.run(_all_registered()), 180, "evalflow serve's deployments")
            yield {
                "api": api,
                "url": f"http://127.0.0.1:{port}",
                "env": client_env,
                "logs": {"server": log, "serve": serve_log},
                "metrics": f"http://127.0.0.1:{metrics_port}",
            }
    finally:
        processes.stop_all()


async def _all_registered() -> bool:
    async with get_client() as client:
        try:
            for name in KINDS:
                await client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


async def _deployments() -> dict:
    async with get_client() as client:
        return {name: await client.read_deployment_by_name(name) for name in KINDS}


async def _add_interval_schedule(deployment_id, anchor: datetime) -> None:
    async with get_client() as client:
        await client.create_deployment_schedules(
            deployment_id, [(IntervalSchedule(interval=INTERVAL, anchor_date=anchor), True)]
        )


async def _runs(deployment_id) -> list:
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=20,
        )


async def _read_run(run_id):
    async with get_client() as client:
        return await client.read_flow_run(run_id)


async def _artifact(key: str):
    async with get_client() as client:
        (latest,) = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    return latest


def _tail(server: dict) -> str:
    return "\n".join(
        f"--- {name} ---\n{path.read_text()[-5000:]}" for name, path in server["logs"].items()
    )


def test_scheduler_creates_runs_that_serve_completes_and_the_cli_lists_them(server):
    deployments = asyncio.run(_deployments())
    # deploy and serve on one server: each kind keeps its pool and pull steps
    assert {name: d.work_pool_name for name, d in deployments.items()} == KINDS
    for name, pool in KINDS.items():
        steps = deployments[name].pull_steps
        if pool:
            assert steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
            ], name
        else:
            assert not steps, name

    # a short interval schedule on the served nightly: the server's scheduler makes runs
    nightly = deployments[NIGHTLY]
    anchor = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    asyncio.run(_add_interval_schedule(nightly.id, anchor))
    due = {anchor, anchor + INTERVAL}
    scheduled: dict = {}

    def interval_runs_scheduled() -> bool:
        runs = asyncio.run(_runs(nightly.id))
        scheduled.update({r.expected_start_time: r for r in runs if r.expected_start_time in due})
        return set(scheduled) == due

    wait_until(interval_runs_scheduled, 60, "the scheduler to create the interval's runs")
    assert all(r.auto_scheduled for r in scheduled.values())
    first = scheduled[anchor]

    # `evalflow serve` picks the first one up when it is due and completes it
    def finished() -> bool:
        run = asyncio.run(_read_run(first.id))
        return run.state is not None and run.state.is_final()

    wait_until(finished, 300, "the scheduled run to finish")
    run = asyncio.run(_read_run(first.id))
    assert run.state.is_completed(), f"{run.state}\n{_tail(server)}"
    assert run.name == run_name("it-nightly nightly", anchor)

    # Prefect's own CLI against this server (all at once: each call is a process start)
    experiment = f"it-nightly-nightly-{anchor.date().isoformat()}"
    report_key = f"evalflow-{experiment}-report"
    commands = [
        ["flow", "ls"],
        ["flow-run", "ls", "--state-type", "COMPLETED"],  # else the next nights fill the list
        ["deployment", "ls"],
        ["work-pool", "ls"],
        ["artifact", "ls"],
        ["artifact", "inspect", report_key],
    ]
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    started = {
        " ".join(c): subprocess.Popen([PREFECT, *c], cwd=REPO, env=server["env"], **pipe)
        for c in commands
    }
    outputs = {}
    for name, process in started.items():
        out, _ = process.communicate(timeout=480)  # generous: CI machines can be loaded
        outputs[name] = (process.returncode, out)
    assert {name: rc for name, (rc, _) in outputs.items()} == dict.fromkeys(started, 0), outputs
    assert "nightly-regression" in outputs["flow ls"][1]
    assert "nightly-served" in outputs["deployment ls"][1]
    assert str(run.id) in outputs["flow-run ls --state-type COMPLETED"][1]  # names get cut
    assert "evalflow" in outputs["work-pool ls"][1]
    assert "evalflow-it-nightly" in outputs["artifact ls"][1]
    inspected = outputs[f"artifact inspect {report_key}"][1]
    assert report_key in inspected and "'type': 'markdown'" in inspected
    report = asyncio.run(_artifact(report_key))
    assert report.type == "markdown" and "**Verdict on " in report.data

    # the run says in Prefect what it evaluates: tags a Prefect user filters by
    experiment_tag = f"experiment:{experiment}"
    assert {experiment_tag, "series:it-nightly", "nightly", "evalflow"} <= set(run.tags)

    # `evalflow serve` serves the metrics and health endpoints beside the deployments
    scraped = httpx.get(f"{server['metrics']}/metrics", timeout=30).text
    assert 'evalflow_generations_total{host="sim",model="sim-small:1b"} 36.0' in scraped
    assert 'evalflow_regression_detected{series="it-nightly"}' in scraped
    assert 'evalflow_runs{status="completed"}' in scraped
    ready = httpx.get(f"{server['metrics']}/health/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    assert {c["component"]: c["status"] for c in ready.json()["checks"]} == {
        "database": "ok",
        "prefect api": "ok",
    }
    deep = httpx.get(f"{server['metrics']}/health/deep", timeout=60)  # the nightly spec's
    assert deep.status_code == 200 and "host sim" in deep.text, deep.text

    # the UI is served
    page = httpx.get(server["url"], timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
