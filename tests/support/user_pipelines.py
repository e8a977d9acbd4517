"""User pipelines for tests, named in specs as ``tests.support.user_pipelines:NAME``."""

from __future__ import annotations

import asyncio

from evaluation.pipelines import PipelineOutput, pipeline
from evaluation.suites import Case


@pipeline(parameters={"passes": int, "chunk_size": int})
async def thorough(case: Case, params: dict, llm) -> PipelineOutput:
    """Draft once per pass over halves of the input, then a final answer."""
    words = case.input_text.split()
    half = max(1, min(params["chunk_size"], len(words)))
    drafts = await asyncio.gather(
        *(llm.generate(" ".join(words[:half]), stage=f"draft:{i}") for i in range(params["passes"]))
    )
    final = await llm.generate("Combine: " + " | ".join(drafts), stage="final")
    return PipelineOutput(final, {"passes": params["passes"]})


async def fails_on_some(case: Case, params: dict, llm) -> str:
    """Raises for cases whose id ends in "-2": those fail, the others are generated."""
    answer = await llm.generate(case.input_text, stage="answer")
    if case.id.endswith("-2"):
        raise RuntimeError(f"no analysis for {case.id}")
    return answer


def not_async(case, params, llm):
    return "never"
