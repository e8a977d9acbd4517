"""Before a sweep runs: which configs will probably send prompts longer than their
context window (num_ctx), which Ollama cuts silently.

The estimate is conservative: a third of the prompt's characters, or its whitespace
words if more (``likely_tokens``; English runs ~4 characters a token, so a prompt
estimated near the window is warned about, not one that fits in words and not in
tokens). Per pipeline, the longest prompt is: the case input under the template
(single); a chunk under the map prompt (map_reduce); the document under a section
prompt (sections); the ``retrieve_k`` longest chunks under the answer prompt (rag).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

from evaluation.pipelines._builtins import document_and_task
from evaluation.pipelines._chunking import Unit, chunk_text, estimate_tokens
from evaluation.pipelines._retrieval import corpus_chunks, load_corpus
from evaluation.run._pipelines import OLLAMA_DEFAULT_NUM_CTX, pipeline_of
from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec

CHARS_PER_TOKEN = 3  # fewer than English's ~4: the estimate errs towards a warning


def likely_tokens(text: str) -> int:
    """A conservative estimate of the model tokens of ``text``."""
    return max(estimate_tokens(text), math.ceil(len(text) / CHARS_PER_TOKEN))


def longest_prompt(item: WorkItem, template_tokens: int) -> int:
    """Estimated tokens (``likely_tokens``) of the longest prompt ``item``'s pipeline
    sends."""
    pipeline, params = pipeline_of(item)
    case = item.case
    if pipeline.name == "map_reduce":
        document, _task = document_and_task(case)
        chunks = chunk_text(document, params["chunk_size"], params["chunk_overlap"], params["unit"])
        longest = max((likely_tokens(c.text) for c in chunks), default=0)
        return template_tokens + likely_tokens(params["map_prompt"]) + longest
    if pipeline.name == "rag":
        sizes = _chunk_tokens(
            params["corpus"], params["chunk_size"], params["chunk_overlap"], params["unit"]
        )
        context = sum(sizes[: params["retrieve_k"]])  # the k longest chunks
        return template_tokens + likely_tokens(params["answer_prompt"]) + context
    if pipeline.name == "sections":
        document, _task = document_and_task(case)
        longest = max(likely_tokens(p) for p in params["sections"].values())
        return template_tokens + longest + likely_tokens(document)
    return template_tokens + likely_tokens(case.input_text)


@cache
def _chunk_tokens(corpus: str, size: int, overlap: int, unit: Unit) -> list[int]:
    """Estimated tokens of each chunk of the corpus, longest first."""
    chunks = corpus_chunks(load_corpus(corpus), size, overlap, unit)
    return sorted((likely_tokens(c.text) for c in chunks), reverse=True)


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
        template = likely_tokens(item.config.template.text.replace("{input}", ""))
        tokens = longest_prompt(item, template)
        labels[item.config.hash] = (item.config.label, num_ctx)
        if tokens > num_ctx:
            over.setdefault(item.config.hash, []).append(tokens)
    return [
        f"config {config} ({labels[config][0]}): {len(sizes)} case(s) send prompts of "
        f"~{max(sizes)} tokens (estimated at {CHARS_PER_TOKEN} characters a token), beyond "
        f"num_ctx {labels[config][1]}; Ollama would cut them silently (raise num_ctx, or "
        "use smaller chunks)"
        for config, sizes in over.items()
    ]
