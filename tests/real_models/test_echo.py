"""The echo rule on real outputs (qa-short, greedy, 32 tokens, as the real demo): the base
Gemma-3-270M sometimes repeats its prompt, sometimes with a word left out ("Marie Curie was born"
for "Marie Skłodowska Curie was born"), and those outputs are echoes with nothing of the
repeat left to score; SmolLM2-135M-Instruct answers in sentences that restate the
question ("Neil Armstrong and Buzz Aldrin remained in lunar orbit while the others
landed.") and is never taken for echoing."""

from __future__ import annotations

import re

import httpx
import pytest

from evaluation.metrics._echo import answer_part
from evaluation.suites import load_suite
from tests.real_models.conftest import SUITES, run_sweep, stored, write_spec
from tests.support.real_models import CHAT_MODELS, GEMMA, SMOLLM2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.usefixtures("prefect_harness")
def test_the_base_model_echoes_and_the_instruct_model_restates(real_server, tmp_path, database_url):
    spec = write_spec(
        tmp_path,
        real_server,
        SUITES / "qa-short.jsonl",
        name="echo",
        grid={"num_predict": [32]},
        metrics=["contains", "echoes_prompt"],
    )
    summary = run_sweep(spec, database_url, limit=8)
    assert (summary["generated"], summary["failed"]) == (16, 0)
    # the server keeps each model it loaded (tests/support/llama_server.py): asked for
    # in turn, neither is loaded again (llama-cpp-python's own server reloads on every
    # switch; the embedding model logs no loads)
    for model in (SMOLLM2, GEMMA, SMOLLM2):
        asked = {"model": model, "prompt": "Hi", "max_tokens": 1}
        httpx.post(f"{real_server.url}/v1/completions", json=asked, timeout=300).raise_for_status()
    loads = real_server.log.read_text(errors="replace").count("loaded meta data with")
    assert loads == len(CHAT_MODELS), f"{loads} model loads for {len(CHAT_MODELS)} models"
    generations, scores = stored(database_url, "echo")
    echo = scores[scores["metric"] == "echoes_prompt"].set_index("generation_id")["value"]
    generations["echo"] = generations["id"].map(echo)
    cases = {c.id: c for c in load_suite(SUITES / "qa-short.jsonl").cases}

    smol = generations[generations["model"] == SMOLLM2]
    assert (smol["echo"] == 0.0).all(), smol.loc[smol["echo"] > 0, ["case_id", "output"]]
    gemma = generations[generations["model"] == GEMMA]
    echoing = gemma[gemma["echo"] == 1.0]
    assert len(echoing) >= 3, gemma[["case_id", "output"]]
    for row in echoing.itertuples():  # nothing of the repeat is left to earn credit
        prompt = cases[row.case_id].prompt_text
        left = _grams(answer_part(row.output, prompt)) & _grams(prompt)
        assert not left, (row.case_id, row.output, left)
