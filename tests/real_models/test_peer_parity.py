"""evalflow against a peer on the same server: Inspect AI (its llama-cpp-python provider)
and evalflow's real ``evaluate`` flow send the same qa-short cases to the same llama.cpp
server, greedy and bounded alike. Each model's outputs must be byte-identical, and the
metrics both define must agree on every case: evalflow's ``contains`` with Inspect's
``includes()``, evalflow's ``exact_match`` with Inspect's ``exact()``. A change on either
side (how a request is built, streamed or decoded; how a metric reads an answer) fails it.

Inspect runs in its own process (its own event loop, logging and warnings), as a user
runs it beside evalflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.real_models.conftest import SUITES, run_sweep, stored, write_spec
from tests.support.real_models import CHAT_MODELS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CASES = 4  # the first single-turn cases of qa-short
MAX_TOKENS = 16

INSPECT = """
import json, sys
from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import exact, includes
from inspect_ai.solver import generate

cases, models, base_url, log_dir, max_tokens = json.loads(sys.argv[1])
task = Task(
    dataset=[Sample(input=c["input"], target=c["references"], id=c["id"]) for c in cases],
    solver=generate(),
    scorer=[includes(), exact()],
    config=GenerateConfig(temperature=0.0, max_tokens=max_tokens),
)
outputs = {}
for model in models:  # one model after the other, as evalflow's sweep asks them
    [log] = inspect_eval(
        task, model=f"llama-cpp-python/{model}", model_base_url=base_url,
        log_dir=f"{log_dir}/{model}", display="none", max_connections=1, max_retries=0,
    )
    assert log.status == "success", log.error
    outputs[model] = {
        s.id: {"output": s.output.completion, "scores": {k: v.value for k, v in s.scores.items()}}
        for s in log.samples
    }
print(json.dumps(outputs))
"""


def single_turn_cases() -> list[dict]:
    cases = [json.loads(line) for line in (SUITES / "qa-short.jsonl").read_text().splitlines()]
    return [c for c in cases if isinstance(c["input"], str) and not c.get("system")][:CASES]


def inspect_outputs(cases: list[dict], models: list[str], base_url: str, log_dir: str) -> dict:
    """Inspect's outputs and scores of each model, by model and case: one process for
    all of them (its start and imports are most of its CPU)."""
    pytest.importorskip("inspect_ai", reason="inspect-ai (the dev extra) is not installed")
    argument = json.dumps([cases, models, f"{base_url}/v1", log_dir, MAX_TOKENS])
    done = subprocess.run(
        [sys.executable, "-c", INSPECT, argument],
        capture_output=True,
        text=True,
        timeout=400,
        env={"INSPECT_LOG_LEVEL": "warning", "LLAMA_CPP_PYTHON_API_KEY": "none", **os.environ},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.usefixtures("prefect_harness")
def test_evalflow_and_inspect_ai_agree_on_the_same_server(real_server, tmp_path, database_url):
    cases = single_turn_cases()
    suite = tmp_path / "qa-parity.jsonl"
    suite.write_text("".join(json.dumps(c) + "\n" for c in cases))
    (tmp_path / "qa-parity.suite.yaml").write_text(
        "name: qa-parity\nversion: '1'\ntask_type: qa\ndefault_metrics: [contains, exact_match]\n"
    )
    spec = write_spec(
        tmp_path, real_server, suite, name="parity", grid={"num_predict": [MAX_TOKENS]}
    )
    assert run_sweep(spec, database_url)["generated"] == len(cases) * len(CHAT_MODELS)
    generations, scores = stored(database_url, "parity")
    value = scores.pivot_table(index=["model", "case_id"], columns="metric", values="value")
    peers = inspect_outputs(cases, list(CHAT_MODELS), real_server.url, str(tmp_path / "logs"))
    for model in CHAT_MODELS:
        peer = peers[model]
        ours = generations[generations["model"] == model].set_index("case_id")["output"]
        assert {c["id"]: ours[c["id"]] for c in cases} == {
            c["id"]: peer[c["id"]]["output"] for c in cases
        }, model
        for case in cases:
            theirs = peer[case["id"]]["scores"]
            mine = value.loc[(model, case["id"])]
            assert mine["contains"] == (theirs["includes"] == "C"), (model, case["id"])
            assert mine["exact_match"] == (theirs["exact"] == "C"), (model, case["id"])
