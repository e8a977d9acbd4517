"""The simulated backend's documented ground truth for pipeline calls."""

from __future__ import annotations

import asyncio

import pytest

from evaluation.backends._simulated_pipelines import (
    MISSED_FACTOR,
    SEQUENTIAL_BONUS,
    STRADDLE_FACTOR,
    kept_tokens,
    pipeline_quality,
)
from evaluation.backends.retry import RetryPolicy
from evaluation.backends.simulated import SimulatedBackend
from evaluation.pipelines import PipelineSetting
from evaluation.pipelines._parameters import PARAMETERS
from evaluation.run._pipelines import CaseRoute, run_case
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case, Suite

DOCUMENT = " ".join(f"w{i}" for i in range(40))
# the evidence "w8 w9 w10 w11" straddles the boundary of chunks of 10 without overlap
EVIDENCE = {"start": DOCUMENT.index("w8 "), "end": DOCUMENT.index(" w12")}
CASE = Case("c", "Which?", ("w9",), metadata={"document": DOCUMENT, "evidence": [EVIDENCE]})


def test_larger_chunks_help_and_overlap_rescues_a_straddling_fact():
    def q(size: int, overlap: int) -> float:
        params = GenerationParams(chunk_size=size, chunk_overlap=overlap, num_ctx=8192)
        return pipeline_quality(0.8, params, CASE, "prompt", 10)

    assert q(10, 0) == pytest.approx(q(10, 4) * STRADDLE_FACTOR)  # overlap 4 holds it whole
    assert q(2000, 200) < q(3000, 300) < 0.8
    plain = Case("c", "Which?", ("w9",))
    big = GenerationParams(chunk_size=3000, chunk_overlap=0, num_ctx=2048)
    assert pipeline_quality(0.8, big, plain, "p", 4000) < pipeline_quality(
        0.8, big, plain, "p", 2000
    )
    assert kept_tokens(big, 4000) == 2048


def test_retrieval_trades_recall_against_distraction():
    few = GenerationParams(retrieve_k=2, num_ctx=8192)
    context = "\n".join(f"[d#{i}] text" for i in range(2))
    many = "\n".join(f"[d#{i}] text" for i in range(20))
    found = pipeline_quality(0.8, few, CASE, f"{context}\nw9 is here", 50)
    assert pipeline_quality(0.8, few, CASE, f"{many}\nw9 is here", 50) < found
    assert pipeline_quality(0.8, few, CASE, context, 50) == pytest.approx(0.8 * MISSED_FACTOR)


def test_sequential_sections_are_slightly_better():
    sequential = pipeline_quality(0.7, GenerationParams(parallel=False), CASE, "p", 10)
    parallel = pipeline_quality(0.7, GenerationParams(parallel=True), CASE, "p", 10)
    assert sequential == pytest.approx(parallel + SEQUENTIAL_BONUS)


def test_a_cut_prompt_is_reported_as_ollama_does_and_flagged():
    suite = Suite("s", "1", "qa", ("contains",), (CASE,))
    host = HostSpec("sim", "simulated://x", 2, "simulated")
    own = {
        k: p.default
        for k, p in PARAMETERS.items()
        if k in ("unit", "mode", "map_prompt", "reduce_prompt", "refine_prompt")
    }
    config = Config(
        "sim-small:1b",
        GenerationParams(chunk_size=40, chunk_overlap=0, num_ctx=30),
        PromptTemplate("default"),
        PipelineSetting.of("map_reduce", own),
    )
    backend = SimulatedBackend(host, suites={"s": suite})
    item = WorkItem(config, CASE, "s")
    result, _, trace = asyncio.run(run_case(item, suite, CaseRoute(backend, RetryPolicy())))
    assert result.simulated and trace.stages[0].prompt_tokens == 30
    assert trace.stages[0].context_truncated and trace.context_truncated_calls >= 1
