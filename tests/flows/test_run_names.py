"""Flow runs are named after their experiment, so the Runs page tells them apart."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from prefect.client.orchestration import get_client

from flows.compare import compare
from flows.evaluate import evaluate
from flows.run_names import run_name, spec_name
from tests.conftest import REPO

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"


def test_a_run_name_is_the_label_and_the_utc_minute():
    paris = timezone(timedelta(hours=1))
    assert run_name("qa-ollama", datetime(2026, 11, 22, 3, 0, 59, tzinfo=paris)) == (
        "qa-ollama · 2026-11-22 02:00"
    )


def test_the_spec_name_falls_back_to_the_file_name(tmp_path):
    broken = tmp_path / "my-sweep.yaml"
    broken.write_text("name: [")
    assert spec_name(str(DEMO)) == "demo-simulated"
    assert spec_name(str(broken)) == "my-sweep"
    assert spec_name(str(tmp_path / "missing.yaml")) == "missing"


async def _run(flow_run_id):
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


@pytest.mark.usefixtures("prefect_harness")
def test_flow_runs_are_named_after_their_experiment(tmp_path, database_url):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-sweep",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["sim-small:1b"],
                "grid": {"temperature": [0.0], "num_predict": [16]},
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )
    state = asyncio.run(evaluate(spec_path=str(spec), database=database_url, return_state=True))
    assert state.is_completed()
    run = asyncio.run(_run(state.state_details.flow_run_id))
    assert run.name == run_name("tiny-sweep", run.expected_start_time)
    assert run.name.startswith("tiny-sweep · ")

    # named as it starts: a run that then fails keeps its name
    failed = compare(experiments=["qa-a", "qa-b"], database=database_url, return_state=True)
    assert failed.is_failed()
    run = asyncio.run(_run(failed.state_details.flow_run_id))
    assert run.name == run_name("compare qa-a vs qa-b", run.expected_start_time)
