"""The generate stage's lanes in worker processes (``evaluate(workers=N)``,
evaluation/run/_workers.py): the same rows as in one process, a host's slots never
over-committed, and a worker that dies mid-run leaves exactly the work left."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from evaluation.storage.db import make_engine
from evaluation.storage.models import Generation
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.flows.test_run_lifecycle import (
    START_S,
    alive,
    children,
    environment,
    evalflow,
    interrupt,
    stored,
    wait_for,
)
from tests.flows.test_run_lifecycle import write_spec as lifecycle_spec
from tests.support.standin_fast import FastStandIn
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

QA_SUITE = REPO / "benchmarks/suites/qa-short.jsonl"
SLOTS = 6


def write_spec(tmp_path: Path, url: str) -> Path:
    spec = {
        "name": "lanes",
        "suite": str(QA_SUITE),
        "models": ["llama3.2:3b"],
        "grid": {"temperature": [0.0, 0.5, 1.0], "num_predict": [16]},
        "hosts": [{"name": "a", "url": url, "slots": SLOTS, "kind": "ollama"}],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def rows(database: str) -> list[tuple]:
    with Session(make_engine(database)) as session:
        found = session.exec(select(Generation)).all()
        return sorted(
            (g.config_hash, g.case_uid, g.sample_index, g.status, g.output) for g in found
        )


@pytest.fixture
def host():
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=5.0)
    standin = FastStandIn(config).start()
    yield standin
    standin.stop()


def test_workers_store_the_rows_one_process_stores_and_never_overcommit(
    tmp_path, host, monkeypatch
):
    from tasks import progress

    spec = write_spec(tmp_path, host.url)
    alone, split = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
    one = asyncio.run(evaluate(spec_path=str(spec), database=alone))
    host.reset()
    seen: list[progress.Reading] = []  # what the terminal's display is told
    monkeypatch.setattr(progress, "LISTENERS", [seen.append])
    two = asyncio.run(evaluate(spec_path=str(spec), database=split, workers=2))

    # the generating line says why its count stands still until the workers are up
    notes = [(r.note, r.done) for r in seen if r.note is not None]
    assert notes == [("starting 2 lane workers…", 0), ("", 0)]

    assert two["generated"] == one["generated"] > 0 and two["failed"] == 0
    assert rows(split) == rows(alone)
    assert host.stats.requests == two["generated"]  # nothing sent twice
    assert 0 < host.max_busy <= SLOTS


def test_a_worker_killed_mid_run_leaves_exactly_the_work_left(tmp_path, host):
    """kill -9 of one worker with its lanes' requests on the wire: its chunks are tried
    once more on the other worker's seats; nothing is stored twice, and a rerun sends
    exactly what is not stored."""
    host.config = replace(host.config, latency_ms=40.0)
    spec = write_spec(tmp_path, host.url)
    database = f"sqlite:///{tmp_path / 'results.db'}"
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(evaluate(spec_path=str(spec), database=database, workers=2)))
        except Exception as exc:  # the run may fail with it: the rerun then finishes
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    total = 3 * len(QA_SUITE.read_text().splitlines())
    while len(rows(database)) < total // 4 and thread.is_alive():
        time.sleep(0.01)
    victims = [p for p in multiprocessing.active_children() if p.name == "evalflow-lanes-0"]
    os.kill(victims[0].pid, signal.SIGKILL)
    thread.join()
    stored = len(rows(database))
    assert stored < total or isinstance(outcome[0], dict), outcome
    before = host.stats.requests
    again = asyncio.run(evaluate(spec_path=str(spec), database=database, workers=2))

    assert again["generated"] == host.stats.requests - before == total - stored
    keys = [row[:3] for row in rows(database)]
    assert len(keys) == len(set(keys)) == total


@pytest.mark.parametrize("embedded", [False, True])
def test_a_worker_takes_and_gives_back_its_slots_without_importing_prefect(
    tmp_path, host, monkeypatch, embedded
):
    """A worker talks to the run's Prefect server over plain HTTP (``SlotApi``):
    Prefect's client was ~3.5 s of CPU of each worker's start. Its share of the slots
    is taken on the server before it says it is ready and given back as it closes, on
    a shared server (leases) and on the run's embedded one (by count)."""
    from prefect.client.orchestration import get_client

    from evaluation.run._chunk import as_chunk
    from evaluation.run._sweep import prepare_sweep
    from evaluation.run._workers import LaneWorkers
    from tasks.adapters.embedded_api import EMBEDDED_API_ENV
    from tasks.adapters.host_limits import size_limits
    from tasks.lane_workers import lane_plan
    from tests.support.lane_runner import noting_lanes

    sweep = prepare_sweep(write_spec(tmp_path, host.url))
    hosts = sweep.spec.hosts
    made: list = []

    async def main() -> tuple:
        async with get_client() as client:
            if embedded:
                monkeypatch.setenv(EMBEDDED_API_ENV, str(client.api_url))
            names = await size_limits(client, hosts)
            plan = lane_plan(sweep, names, None, client)
            workers = LaneWorkers(2, hosts, noting_lanes, (plan, tmp_path / "modules"))
            try:
                await workers.ready()
                held = await _active(client, names["a"])
                items = sweep.work_items()[:4]
                outcome = await workers.run(hosts[0], as_chunk(items), made.extend)
            finally:
                await workers.close()
            return plan, held, outcome, await _active(client, names["a"])

    plan, held, outcome, after = asyncio.run(main())
    assert plan.registry.by_count is embedded
    assert held == SLOTS and after == 0  # each worker's share taken, then given back
    assert len(outcome.records) == len(made) == 4 and all(r.result for r in made)
    notes = [note.read_text() for note in tmp_path.glob("modules-*")]
    assert notes == ["", ""]  # not one Prefect, SQLAlchemy, pandas or click module in either
    assert not list(plan.registry.folder.glob("*.holder"))  # nothing left to a next run


async def _active(client, name: str) -> int:
    return (await client.read_global_concurrency_limit_by_name(name)).active_slots


def _two_workers_on_four_slots(tmp_path, experiment: str, url: str) -> tuple[str, ...]:
    """`run` of 3 cases per config with `--workers 2` on a host of 4 slots."""
    spec = lifecycle_spec(tmp_path / "spec.yaml", experiment, url)
    spec.write_text(spec.read_text().replace("slots: 2", "slots: 4"))
    return ("run", str(spec), "--limit", "3", "--workers", "2")


def _alive_after(pids: list[int], within_s: float = 10.0) -> list[int]:
    """The processes still alive once they had ``within_s`` to end: the writer process
    and multiprocessing's resource tracker end when the run's pipes close, just after
    its exit (a worker gives its slots back before that)."""
    deadline = time.monotonic() + within_s
    while [p for p in pids if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_ctrl_c_stores_what_the_workers_requests_in_flight_return(tmp_path, prefect_home, started):
    """`evalflow run --workers 2` with every slot's request on the wire (3 s each):
    Ctrl-C waits for the workers' requests, says so, stores them and leaves no worker
    behind; the rerun asks only for what was never sent."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    config = StandInConfig(models=("llama3.2:3b",), slots=4, latency_ms=3000.0)
    with running_standin(config) as s:
        command = _two_workers_on_four_slots(tmp_path, "lanes-stop", s.url)  # 9 generations
        run = evalflow(env, *command)
        started.append(run)
        workers = []
        wait_for(lambda: stored(db) >= 4 and s.stats.in_flight == 4, START_S, run)
        workers = children(run.pid)
        exit_code_and_output = interrupt(run, signal.SIGINT)
        requests, at_exit = s.stats.requests, stored(db)
        left = _alive_after(workers)

        s.reconfigure(latency_ms=1.0)
        rerun = evalflow(env, *command)
        started.append(rerun)
        rerun_output, _ = rerun.communicate(timeout=1200)
        redone = s.stats.requests - requests

    _, output, _ = exit_code_and_output
    assert run.returncode == 130, output
    assert "waiting up to 5 s for the 4 request(s) in flight" in output
    assert at_exit == requests == 8, output  # every request sent is stored
    assert left == []
    assert rerun.returncode == 0, rerun_output
    assert redone == 9 - at_exit


@pytest.mark.parametrize("group", [False, True], ids=["command", "group"])
def test_sigterm_leaves_no_slot_holder_and_no_leaked_semaphore(
    tmp_path, prefect_home, started, group
):
    """`evalflow run --workers 2` sent SIGTERM with every slot's request on the wire:
    exit 143 with the requests stored, and the workers' host slots given back before the
    exit, so no holder file is left for the next run to find "held by dead run(s)" (the
    workers were cut off by the run's exit with theirs listed); and no resource_tracker
    warning of leaked semaphores (the workers' shared lock and stop event). Also when the
    whole process group gets it (a service manager's stop): the workers and the writer
    process leave the stop to the run (they died at once, their slots listed)."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    config = StandInConfig(models=("llama3.2:3b",), slots=4, latency_ms=3000.0)
    with running_standin(config) as s:
        run = evalflow(env, *_two_workers_on_four_slots(tmp_path, "lanes-term", s.url))
        started.append(run)
        wait_for(lambda: stored(db) >= 4 and s.stats.in_flight == 4, START_S, run)
        workers = children(run.pid)
        if group:  # one signal to each: the run's wait for its requests is not cut short
            os.killpg(run.pid, signal.SIGTERM)
            output, _ = run.communicate(timeout=60)  # it ends when all are gone
        else:
            _, output, _ = interrupt(run, signal.SIGTERM)
        requests, at_exit = s.stats.requests, stored(db)
        left = _alive_after(workers)

    assert run.returncode == 143, output
    assert "waiting up to 5 s for the 4 request(s) in flight" in output
    assert at_exit == requests == 8, output
    assert left == []
    assert sorted(tmp_path.glob("**/*.holder")) == [], output
    assert "leaked semaphore" not in output, output
