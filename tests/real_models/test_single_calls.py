"""Every single-call suite kind through the real ``evaluate`` flow on two real models
(SmolLM2-135M-Instruct and the base Gemma-3-270M) served by llama.cpp: two cases each,
greedy, 12 tokens (24 for qa-short, where the base model's echo shows)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from evaluation.metrics._echo import answer_part
from tests.real_models.conftest import SUITES, run_sweep, stored, write_spec
from tests.support.real_models import CHAT_MODELS, GEMMA, SMOLLM2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("suite", ["qa-short", "classify-intent", "summarize-short"])
def test_a_single_call_suite_on_both_real_models(suite, real_server, tmp_path, database_url):
    metrics = yaml.safe_load((SUITES / f"{suite}.suite.yaml").read_text())["default_metrics"]
    metrics = [*metrics, "echoes_prompt"]
    spec = write_spec(
        tmp_path,
        real_server,
        SUITES / f"{suite}.jsonl",
        name=suite,
        grid={"num_predict": [24 if suite == "qa-short" else 12]},
        metrics=metrics,
    )
    summary = run_sweep(spec, database_url, limit=2)
    assert (summary["generated"], summary["failed"], summary["simulated"]) == (4, 0, False)
    generations, scores = stored(database_url, suite)
    assert sorted(generations["model"]) == sorted(CHAT_MODELS * 2)
    for row in generations.itertuples():
        assert row.status == "ok" and row.host == "llama-cpp" and not row.simulated
        assert row.latency_s > 0 and 0 <= row.eval_count <= 24
        assert row.done_reason in {"stop", "length"}
        assert (row.eval_count == 0) == (row.output == "")
        # llama-cpp-python streams no usage: the prompt's count is not reported (NULL),
        # never a 0 that reads as an empty prompt
        assert pd.isna(row.prompt_eval_count) or row.prompt_eval_count > 0
    smol = generations[generations["model"] == SMOLLM2]
    assert all(smol["output"].str.len() > 0)  # the instruct model answers every case
    for metric in metrics:  # each generation scored on each of the suite's metrics
        assert sorted(scores.loc[scores["metric"] == metric, "generation_id"]) == sorted(
            generations["id"]
        ), metric
    if suite == "qa-short":  # "What was the name of the lunar module?" -> Eagle
        first = smol[smol["case_id"] == "qa-apollo-11-1"]["output"].item()
        assert "Eagle" in first
        contains = scores[(scores["metric"] == "contains") & (scores["model"] == SMOLLM2)]
        assert contains.set_index("case_id")["value"]["qa-apollo-11-1"] == 1.0
        # the base model repeats the passage ("Answer: Apollo 11 was the first crewed
        # mission to land on ..."): flagged, and no credit for what the echo holds
        gemma = generations[generations["model"] == GEMMA].set_index("case_id")
        echoes = scores[(scores["metric"] == "echoes_prompt") & (scores["model"] == GEMMA)]
        assert echoes.set_index("case_id")["value"]["qa-apollo-11-1"] == 1.0
        first_input = json.loads((SUITES / "qa-short.jsonl").read_text().splitlines()[0])["input"]
        assert "Apollo 11 was the first" in gemma["output"]["qa-apollo-11-1"]
        assert "Apollo 11 was the first" not in answer_part(
            gemma["output"]["qa-apollo-11-1"], first_input
        )
