"""How many model calls a config's pipeline makes per case, before it runs: what `plan`
multiplies a single call's seconds by for a pipeline config it has no measurement of
its own for (its model's other configs, a probe: one call each).

map_reduce: one call per chunk of the case's document, and the reduce (``refine``: one
per chunk); sections: one per section, and the assembly where there is one; rag: the
question's embedding and the answer (the corpus is embedded once for the whole sweep, not
counted); single: one. A pipeline of one's own: unknown (None), which `plan` says.
"""

from __future__ import annotations

from collections.abc import Iterable

from evaluation.pipelines._builtins import document_and_task
from evaluation.pipelines._chunking import chunk_text
from evaluation.run._pipelines import pipeline_of
from evaluation.run._work import WorkItem

#: What each built-in pipeline's calls are, as the plan's provenance line says them.
_WHAT = {
    "map_reduce": "a call per chunk and the reduce",
    "refine": "a call per chunk",
    "sections": "a call per section",
    "sections+assembly": "a call per section and the assembly",
    "rag": "the question's embedding and the answer",
}


def calls_of(item: WorkItem) -> tuple[int, str] | None:
    """The calls ``item``'s pipeline makes for its case and what they are (``_WHAT``'s
    key); None for a pipeline of one's own."""
    pipeline, params = pipeline_of(item)
    if pipeline.name == "single":
        return 1, "single"
    if pipeline.name == "map_reduce":
        document, _task = document_and_task(item.case)
        size, overlap = params["chunk_size"], params["chunk_overlap"]
        chunks = max(1, len(chunk_text(document, size, overlap, params["unit"])))
        refine = params["mode"] == "refine"
        return chunks + (not refine), "refine" if refine else "map_reduce"
    if pipeline.name == "sections":
        assembly = bool(params.get("assembly_prompt"))
        kind = "sections+assembly" if assembly else "sections"
        return len(params["sections"]) + assembly, kind
    if pipeline.name == "rag":
        return 2, "rag"
    return None


def mean_calls(items: Iterable[WorkItem]) -> tuple[float, str] | None:
    """The mean calls per case over ``items`` (one config's) and what they are ("" for a
    single call); None where the pipeline is one of one's own."""
    counted = [calls_of(item) for item in items]
    known = [c for c in counted if c is not None]
    if not known or len(known) < len(counted):
        return None
    return sum(n for n, _ in known) / len(known), _WHAT.get(known[0][1], "")
