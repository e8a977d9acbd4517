"""Before a sweep runs: which configs will probably send prompts longer than their
context window (num_ctx), which Ollama cuts silently.

The estimate is the prompt's whitespace tokens (a lower bound of model tokens), so a
warning means the prompt surely exceeds the window; a prompt near the limit may be cut
without one. Per pipeline, the longest prompt is: the case input under the template
(single); a chunk under the map prompt (map_reduce); the document under a section
prompt (sections); the ``retrieve_k`` longest chunks under the answer prompt (rag).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from evaluation.pipelines._builtins import document_and_task
from evaluation.pipelines._chunking import Unit, estimate_tokens
from evaluation.pipelines._retrieval import corpus_chunks, load_corpus
from evaluation.run._pipelines import OLLAMA_DEFAULT_NUM_CTX, pipeline_of
from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec


def longest_prompt(item: WorkItem, template_tokens: int) -> int:
    """Estimated tokens of the longest prompt ``item``'s pipeline sends."""
    pipeline, params = pipeline_of(item)
    case = item.case
    if pipeline.name == "map_reduce":
        size = params["chunk_size"]
        if params["unit"] == "characters":
            size = max(1, size // 4)  # ~4 characters per token
        return template_tokens + estimate_tokens(params["map_prompt"]) + size
    if pipeline.name == "rag":
        sizes = _chunk_tokens(
            params["corpus"], params["chunk_size"], params["chunk_overlap"], params["unit"]
        )
        context = sum(sizes[: params["retrieve_k"]])  # the k longest chunks
        return template_tokens + estimate_tokens(params["answer_prompt"]) + context
    if pipeline.name == "sections":
        document, _task = document_and_task(case)
        longest = max(estimate_tokens(p) for p in params["sections"].values())
        return template_tokens + longest + estimate_tokens(document)
    return template_tokens + estimate_tokens(case.input_text)


@cache
def _chunk_tokens(corpus: str, size: int, overlap: int, unit: Unit) -> list[int]:
    """Tokens of each chunk of the corpus, longest first."""
    chunks = corpus_chunks(load_corpus(corpus), size, overlap, unit)
    return sorted((estimate_tokens(c.text) for c in chunks), reverse=True)


def context_warnings(items: Sequence[WorkItem], hosts: Sequence[HostSpec]) -> list[str]:
    """One line per config whose prompts probably exceed its num_ctx (Ollama's default
    2048 where unset, on Ollama and simulated hosts only)."""
    ollama = any(h.kind in ("ollama", "simulated") for h in hosts)
    over: dict[str, list[int]] = {}
    labels: dict[str, tuple[str, int]] = {}
    for item in items:
        if item.sample_index:
            continue
        num_ctx = item.config.params.num_ctx or (OLLAMA_DEFAULT_NUM_CTX if ollama else None)
        if num_ctx is None:
            continue
        template = estimate_tokens(item.config.template.text.replace("{input}", ""))
        tokens = longest_prompt(item, template)
        labels[item.config.hash] = (item.config.label, num_ctx)
        if tokens > num_ctx:
            over.setdefault(item.config.hash, []).append(tokens)
    return [
        f"config {config} ({labels[config][0]}): {len(sizes)} case(s) send prompts of "
        f"~{max(sizes)} tokens or more, beyond num_ctx {labels[config][1]}; Ollama would "
        "cut them silently (raise num_ctx, or use smaller chunks)"
        for config, sizes in over.items()
    ]
