"""Cancelling a sweep from the Prefect UI: the UI sets the flow run to Cancelling through
the API; here the test does the same with Prefect's client. The run must stop
generating within seconds, give back its host slots, end its experiment `cancelled`
and its flow run Cancelled; a rerun completes it, nothing redone or stored twice."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import CancelledRun
from prefect.states import Cancelling
from sqlalchemy import func, select

from evaluation.spec import HostSpec
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment, ExperimentRun, Generation
from flows.evaluate import evaluate
from tasks.adapters.prefect_concurrency import host_limit_name
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
CASES = sum(1 for line in SUITE.read_text().splitlines() if line.strip())
TEMPERATURES = [0.0, 0.5]
TOTAL = len(TEMPERATURES) * CASES
SLOTS = 2
LATENCY_MS = 100.0  # 72 generations on 2 slots: ~4 s, so the cancel lands mid-sweep
STOP_LIMIT_S = 5.0  # the watch polls every second; the rest is unwinding


def write_spec(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "cancel-me",
                "suite": str(SUITE),
                "models": ["llama3.2:3b"],
                "grid": {"temperature": TEMPERATURES, "num_predict": [16]},
                "hosts": [{"name": "cancel-host", "url": url, "slots": SLOTS}],
            }
        )
    )
    return path


def stored(database_url: str) -> int:
    engine = make_engine(database_url, create=False)
    try:
        with session_scope(engine) as session:
            return session.exec(
                select(func.count()).select_from(Generation).where(Generation.status == "ok")
            ).scalar_one()
    except Exception:  # tables not made yet
        return 0
    finally:
        engine.dispose()


async def cancel_from_the_ui(flow_run_id: str) -> None:
    """What the UI's Cancel button does: propose Cancelling for the flow run."""
    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Cancelling(), force=True)


async def flow_run_state(flow_run_id: str) -> str:
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).state.type.value


async def active_slots(host: HostSpec) -> int:
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(host_limit_name(host))
        return limit.active_slots


def test_a_sweep_cancelled_from_the_api_stops_frees_its_slots_and_resumes(tmp_path, database_url):
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS)
    with running_standin(config) as server:
        spec = write_spec(tmp_path / "spec.yaml", server.url)
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["result"] = asyncio.run(evaluate(str(spec), database=database_url))
            except BaseException as exc:
                outcome["error"] = exc
            outcome["ended"] = time.monotonic()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 300
        while stored(database_url) < TOTAL // 4:
            assert thread.is_alive(), outcome
            assert time.monotonic() < deadline, "the sweep never got going"
            time.sleep(0.05)
        engine = make_engine(database_url, create=False)
        with session_scope(engine) as session:
            flow_run_id = session.get(ExperimentRun, "cancel-me").flow_run_id
        asyncio.run(cancel_from_the_ui(flow_run_id))
        cancelled_at = time.monotonic()
        thread.join(60)
        assert not thread.is_alive(), "the run went on after the cancel"
        stop_s = outcome["ended"] - cancelled_at
        requests_at_stop = server.stats.requests
        time.sleep(1.0)  # nothing may reach the host after the run has stopped
        requests_after = server.stats.requests
        in_flight = server.stats.in_flight
        at_cancel = stored(database_url)
        with session_scope(engine) as session:
            experiment = session.exec(
                select(Experiment).where(Experiment.name == "cancel-me")
            ).scalar_one()
            run_row = session.get(ExperimentRun, "cancel-me")
            cancelled_status = (experiment.status, run_row.status, run_row.reason)
        slots_after_cancel = asyncio.run(active_slots(HostSpec("cancel-host", server.url)))
        state_after_cancel = asyncio.run(flow_run_state(flow_run_id))

        before_rerun = server.stats.requests
        summary = asyncio.run(evaluate(str(spec), database=database_url))
        redone = server.stats.requests - before_rerun

    print(f"stopped {stop_s:.2f} s after the cancel, {at_cancel}/{TOTAL} stored")
    assert isinstance(outcome.get("error"), CancelledRun), outcome
    assert stop_s <= STOP_LIMIT_S, f"took {stop_s:.1f} s to stop"
    assert 0 < at_cancel < TOTAL
    assert requests_after == requests_at_stop and in_flight == 0
    assert slots_after_cancel == 0
    assert state_after_cancel == "CANCELLED"
    assert cancelled_status[:2] == ("cancelled", "cancelled")
    assert "cancelled from Prefect" in cancelled_status[2]

    assert summary["skipped_already_done"] == at_cancel
    assert summary["generated"] == TOTAL - at_cancel == redone
    with session_scope(engine) as session:
        keys = session.exec(
            select(
                func.count(),
                func.count(func.distinct(Generation.config_hash + Generation.case_uid)),
            ).select_from(Generation)
        ).one()
        assert tuple(keys) == (TOTAL, TOTAL)
        assert session.get(ExperimentRun, "cancel-me").status == "completed"
    engine.dispose()
