"""The built-in pipelines: single, map_reduce, rag, sections.

Where the document comes from: ``case.metadata["document"]`` when the case has one (its
input is then the task or question about it), else the case's input itself (and the
task is ``case.metadata["task"]``, or a summary).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from evaluation.pipelines._chunking import chunk_text
from evaluation.pipelines._contract import Handles, PipelineOutput
from evaluation.pipelines._retrieval import corpus_chunks, load_corpus, retrieve
from evaluation.pipelines._simulated_time import caught_up, simulated_now
from evaluation.suites import Case

T = TypeVar("T")
DEFAULT_TASK = "Summarise the document."

# The variables each prompt parameter may use (checked when the spec is read).
PROMPT_VARIABLES: dict[str, tuple[str, ...]] = {
    "map_prompt": ("task", "chunk", "index", "count"),
    "reduce_prompt": ("task", "partials"),
    "refine_prompt": ("task", "answer", "chunk", "index", "count"),
    "answer_prompt": ("task", "context"),
    "sections": ("task", "document", "previous"),
    "assembly_prompt": ("task", "sections"),
}


async def all_of(calls: Iterable[Awaitable[T]]) -> list[T]:
    """The calls' results, run at once; the first error cancels the others (so a failed
    case leaves no call running) and is raised as it is. On simulated time the caller
    goes on when the last call ends (``_simulated_time``)."""

    async def timed(call: Awaitable[T]) -> tuple[T, float]:
        result = await call
        return result, simulated_now()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(timed(call)) for call in calls]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    caught_up(task.result()[1] for task in tasks)
    return [task.result()[0] for task in tasks]


def document_and_task(case: Case) -> tuple[str, str]:
    """The case's document and what to do with it (see the module docstring)."""
    document = case.metadata.get("document")
    if isinstance(document, str) and document.strip():
        return document, case.input_text
    task = case.metadata.get("task")
    return case.input_text, task if isinstance(task, str) and task.strip() else DEFAULT_TASK


async def single(case: Case, params: dict[str, Any], llm: Handles) -> str:
    """Today's behaviour: the case's input, under the config's template, in one call."""
    return await llm.generate(case.input, stage="generate")  # chat turns kept


async def map_reduce(case: Case, params: dict[str, Any], llm: Handles) -> str:
    """Map a prompt over the document's chunks, then reduce the partial answers; or, in
    ``refine`` mode, carry one answer through the chunks in order."""
    document, task = document_and_task(case)
    chunks = chunk_text(document, params["chunk_size"], params["chunk_overlap"], params["unit"])
    if not chunks:
        raise ValueError("the case has no document text to chunk")
    count = len(chunks)

    def mapped(i: int) -> str:
        return params["map_prompt"].format(
            task=task, chunk=chunks[i].text, index=i + 1, count=count
        )

    if params["mode"] == "refine":
        answer = await llm.generate(mapped(0), stage="map")
        for i in range(1, count):
            prompt = params["refine_prompt"].format(
                task=task, answer=answer, chunk=chunks[i].text, index=i + 1, count=count
            )
            answer = await llm.generate(prompt, stage="refine")
        return answer
    partials = await all_of(llm.generate(mapped(i), stage="map") for i in range(count))
    joined = "\n\n".join(f"Part {i}:\n{text}" for i, text in enumerate(partials, 1))
    return await llm.generate(
        params["reduce_prompt"].format(task=task, partials=joined), stage="reduce"
    )


async def rag(case: Case, params: dict[str, Any], llm: Handles) -> PipelineOutput:
    """Embed the corpus's chunks (once per embedding model and chunking, for the whole
    sweep), retrieve the best ``retrieve_k`` above ``min_similarity`` for the case's
    question and answer from them."""
    size, overlap, unit = params["chunk_size"], params["chunk_overlap"], params["unit"]
    model = params["embed_model"]
    chunks = corpus_chunks(load_corpus(params["corpus"]), size, overlap, unit)
    key = ("corpus", params["corpus"], size, overlap, unit)
    vectors = await llm.embed_once(key, [c.text for c in chunks], model=model, stage="embed")
    question = case.input_text
    [query] = await llm.embed([question], model=model, stage="retrieve")
    hits = retrieve(
        query, vectors, chunks, k=params["retrieve_k"], min_similarity=params["min_similarity"]
    )
    context = "\n\n".join(f"[{h.chunk.id}] {h.chunk.text}" for h in hits) or "(nothing found)"
    answer = await llm.generate(
        params["answer_prompt"].format(task=question, context=context),
        stage="answer",
        retrieved=hits,
    )
    return PipelineOutput(
        answer,
        {
            "retrieved_chunk_ids": [h.chunk.id for h in hits],
            "retrieved_spans": [[h.chunk.document, h.chunk.start, h.chunk.end] for h in hits],
            "similarities": [round(h.similarity, 6) for h in hits],
        },
    )


async def sections(case: Case, params: dict[str, Any], llm: Handles) -> str:
    """A report's named sections over one document, at once (``parallel``) or in order,
    each then seeing the sections before it; optionally joined by an assembly call."""
    document, task = document_and_task(case)
    named: dict[str, str] = params["sections"]

    def prompt(name: str, previous: str) -> str:
        return named[name].format(task=task, document=document, previous=previous)

    if params["parallel"]:
        texts = await all_of(
            llm.generate(prompt(name, ""), stage=f"section:{name}") for name in named
        )
        written = dict(zip(named, texts, strict=True))
    else:
        written = {}
        for name in named:
            previous = _joined(written)
            written[name] = await llm.generate(prompt(name, previous), stage=f"section:{name}")
    report = _joined(written)
    if params.get("assembly_prompt"):
        return await llm.generate(
            params["assembly_prompt"].format(task=task, sections=report), stage="assembly"
        )
    return report


def _joined(written: dict[str, str]) -> str:
    return "\n\n".join(f"## {name}\n{text}" for name, text in written.items())
