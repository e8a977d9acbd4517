"""User pipelines for tests, named in specs as ``tests.support.user_pipelines:NAME``."""

from __future__ import annotations

import asyncio

from evaluation.pipelines import PipelineOutput, pipeline
from evaluation.suites import Case


@pipeline(parameters={"passes": int, "chunk_size": int})
async def thorough(case: Case, params: dict, llm) -> PipelineOutput:
    """A draft per pass over the first ``chunk_size`` words, then a final answer; a
    case marked ``fail`` raises after its drafts (its case fails, the sweep goes on)."""
    words = case.input_text.split()
    half = max(1, min(params["chunk_size"], len(words)))
    drafts = await asyncio.gather(
        *(llm.generate(" ".join(words[:half]), stage=f"draft:{i}") for i in range(params["passes"]))
    )
    if case.metadata.get("fail"):
        raise RuntimeError(f"no analysis for {case.id}")
    final = await llm.generate("Combine: " + " | ".join(drafts), stage="final")
    return PipelineOutput(final, {"passes": params["passes"]})


def not_async(case, params, llm):
    return "never"
