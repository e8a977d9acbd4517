"""Prefect's own server, scheduler, UI and CLI with this project's pinned versions: a real
`prefect server start` (its own PREFECT_HOME, a free port, SQLite from evalflow's
schema snapshot: tests/integration/seeded_home.py), the worker
deployments registered with `evalflow deploy` and the served ones with `evalflow serve`
on the same server, a short interval schedule on the served nightly deployment.

Checks: the deployments of both kinds keep what they are (pool, pull steps); the
server's scheduler creates scheduled runs; the first one completes through
`evalflow serve` under a name that says which experiment it is; its report is a markdown
artifact; Prefect's CLI lists flows, runs, deployments, work pools and artifacts (exit 0).
Then the trend watch over time-scaled nights: a schedule of six nights one second apart,
one of them on a degraded simulated host, raises one alarm, on that night and config.

Stops every process it starts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
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
from prefect.client.schemas.schedules import IntervalSchedule, RRuleSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from evaluation.series import WatchSettings, watch_series
from evaluation.spec import expand, load_spec
from evaluation.storage.db import make_engine
from flows.run_names import run_name
from tests.conftest import REPO
from tests.integration.seeded_home import seeded_prefect_home
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
        "PREFECT_HOME": str(seeded_prefect_home(root / "server-home")),
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    }
    client_env = base | {
        "PREFECT_HOME": str(root / "client-home"),
        "PREFECT_API_URL": api,
        "EVALFLOW_HOME": str(root / "evalflow-home"),
        "EVALFLOW_DATABASE_URL": f"sqlite:///{root / 'results.db'}",
        "COLUMNS": "250",  # the CLI's tables, unwrapped
        # serve picks up the next due run within a second of the last one's end
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    try:
        log = processes.start(
            "server",
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
        )
        wait_until(lambda: _healthy(f"{api}/health"), 240, "the Prefect server")
        run_cli([PREFECT, "work-pool", "create", "evalflow", "--type", "process"], client_env)
        spec = root / "it-nightly.yaml"
        spec.write_text(yaml.safe_dump(SPEC))
        metrics_port = free_port()
        serve_log = processes.start(
            "serve",
            [
                EVALFLOW,
                "serve",
                "--nightly-spec",
                str(spec),
                "--metrics-port",
                str(metrics_port),
                "--limit",
                "1",
            ],  # one run at a time: a series' nights follow each other
            client_env,
        )
        run_cli([EVALFLOW, "deploy", "--pool", "evalflow"], client_env)  # while serve starts
        with temporary_settings({PREFECT_API_URL: api}):
            wait_until(lambda: asyncio.run(_all_registered()), 180, "evalflow serve's deployments")
            yield {
                "root": root,
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


def prefect_cli(server: dict, commands: list[list[str]]) -> dict[str, subprocess.Popen]:
    """Prefect's CLI against ``server``, each command started, by its words."""
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    return {
        " ".join(c): subprocess.Popen([PREFECT, *c], cwd=REPO, env=server["env"], **pipe)
        for c in commands
    }


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

    # Prefect's own CLI against this server, each call a process start: what needs no
    # run starts now, while the first run is still seconds away
    started = prefect_cli(server, [["flow", "ls"], ["deployment", "ls"], ["work-pool", "ls"]])

    # `evalflow serve` picks the first one up when it is due and completes it
    def finished() -> bool:
        run = asyncio.run(_read_run(first.id))
        return run.state is not None and run.state.is_final()

    wait_until(finished, 300, "the scheduled run to finish")
    run = asyncio.run(_read_run(first.id))
    assert run.state.is_completed(), f"{run.state}\n{_tail(server)}"
    assert run.name == run_name("it-nightly nightly", anchor)

    # the rest of the CLI (all at once), on the finished run
    experiment = f"it-nightly-nightly-{anchor.date().isoformat()}"
    report_key = f"evalflow-{experiment}-report"
    commands = [
        ["flow-run", "ls", "--state-type", "COMPLETED"],  # else the next nights fill the list
        ["artifact", "ls"],
        ["artifact", "inspect", report_key],
    ]
    started |= prefect_cli(server, commands)
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
    # the series' first nightly compared nothing (no baseline yet): no verdict, no gauge
    assert 'evalflow_regression_detected{series="it-nightly"}' not in scraped
    assert 'evalflow_runs{simulated="true",status="completed"}' in scraped
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


WATCH_SPEC = {  # two configs, each on its own simulated host; one quality metric
    "name": "it-watch",
    "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
    "models": ["sim-small:1b", "sim-large:8b"],
    "grid": {"temperature": [0.0], "num_predict": [16]},
    "metrics": ["exact_match"],
    "hosts": [
        {"name": "sim-a", "url": "simulated://sim-a", "kind": "simulated",
         "models": ["sim-small:1b"], "slots": 4},
        {"name": "sim-b", "url": "simulated://sim-b", "kind": "simulated",
         "models": ["sim-large:8b"], "slots": 4},
    ],
}  # fmt: skip
NIGHTS = 6
DROP = WatchSettings().learning + 1  # the first night the watch judges


def _rrule_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


async def _add_night_schedules(deployment_id, nights: list[datetime], specs: dict) -> None:
    """The nights, one second apart, as two schedules of the served nightly: every night
    but DROP on the healthy spec, DROP on the degraded one (parameters per schedule)."""
    experiment = "it-watch-{date}-{time}"  # one experiment per (time-scaled) night
    every_night = (
        f"DTSTART:{_rrule_time(nights[0])}\nRRULE:FREQ=SECONDLY;COUNT={NIGHTS}\n"
        f"EXDATE:{_rrule_time(nights[DROP])}"
    )
    async with get_client() as client:
        for rule, spec in (
            (every_night, specs["healthy"]),
            (f"RDATE:{_rrule_time(nights[DROP])}", specs["degraded"]),
        ):
            await client.create_deployment_schedules(
                deployment_id,
                [(RRuleSchedule(rrule=rule, timezone="UTC"), True)],
                parameters={"spec_path": str(spec), "experiment": experiment},
            )  # fmt: skip


def test_a_schedule_of_nights_alarms_once_on_the_night_a_host_degraded(server):
    root = server["root"]
    specs = {}
    for kind, url in (
        ("healthy", "simulated://sim-b"),
        ("degraded", "simulated://sim-b?degrade=0.5"),
    ):
        spec = {
            **WATCH_SPEC,
            "hosts": [WATCH_SPEC["hosts"][0], {**WATCH_SPEC["hosts"][1], "url": url}],
        }
        specs[kind] = root / f"it-watch-{kind}.yaml"
        specs[kind].write_text(yaml.safe_dump(spec))
    deployment = asyncio.run(_deployments())[NIGHTLY]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    nights = [start + timedelta(seconds=i) for i in range(NIGHTS)]
    asyncio.run(_add_night_schedules(deployment.id, nights, specs))
    # The scheduler service makes these runs within its 1 s loop; asking the server to
    # schedule from the first night makes sure none is missed on a loaded machine (the
    # runs' idempotency keys keep each night once). Its SQLite busy with the scheduler's
    # own writes, the server answers 503 (it did under a parallel test run): asked again.
    deadline = time.monotonic() + 120
    while True:
        scheduled = httpx.post(
            f"{server['api']}/deployments/{deployment.id}/schedule",
            json={"start_time": nights[0].isoformat(), "end_time": nights[-1].isoformat()},
            timeout=60,
        )
        if scheduled.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert scheduled.status_code in (200, 201), scheduled.text
    runs: dict = {}

    def all_nights_final() -> bool:
        found = {r.expected_start_time: r for r in asyncio.run(_runs(deployment.id))}
        runs.update({t: found[t] for t in nights if t in found})
        return len(runs) == NIGHTS and all(r.state.is_final() for r in runs.values())

    wait_until(all_nights_final, 600, f"{NIGHTS} scheduled nights to finish")
    ordered = [runs[t] for t in nights]  # by their scheduled order
    assert all(r.auto_scheduled for r in ordered)
    names = [f"it-watch-{t:%Y-%m-%d}-{t:%H%M%S}" for t in nights]

    # the nightly run of the degraded night failed on the trend alarm, and only it
    states = [(r.state.type.value, r.state.message or "") for r in ordered]
    for night, (state, message) in enumerate(states):
        if night == DROP:
            assert state == "FAILED", f"{states}\n{_tail(server)}"
            assert "Trend alarm: exact_match of sim-large:8b" in message, message
            assert "sim-small" not in message, message
        else:
            assert state == "COMPLETED", f"night {night}: {states}\n{_tail(server)}"

    # the watch over the stored series: one alarm, on that night and config
    with Session(make_engine(server["env"]["EVALFLOW_DATABASE_URL"])) as session:
        watch = watch_series(session, "it-watch")
    assert [p.experiment for p in watch.points] == names
    alarms = {(s.label, s.metric): s.alarm_nights for s in watch.streams if s.alarm_nights}
    assert alarms == {("sim-large:8b", "exact_match"): (names[DROP],)}  # as `show` names it
    configs = {c.hash for c in expand(load_spec(specs["degraded"]))}  # the healthy spec's too
    assert {s.config for s in watch.streams} == configs
    # the nights after the learning ones were judged (DROP and the recovered one after)
    judged = {(s.label, s.metric): [n.judged for n in s.nights] for s in watch.streams}
    assert all(j[DROP:] == [True] * (NIGHTS - DROP) for j in judged.values()), judged
