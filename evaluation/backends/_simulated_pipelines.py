"""Ground truth of the simulated backend for pipeline calls (docs/simulated-backend.md,
"Pipelines"). A call is a pipeline call when its request sets a pipeline parameter
(chunk_size, retrieve_k or parallel); one-call sweeps are untouched.

- The context window: a prompt of more tokens than ``num_ctx`` (2048 unset) is cut as
  Ollama cuts it: ``prompt_eval_count`` is ``num_ctx`` and quality is scaled by the share
  of the prompt kept.
- map_reduce (chunk_size): quality × (1 − CHUNK_PENALTY·exp(−chunk tokens / CHUNK_SCALE))
  — larger chunks keep more context, until the window cuts them; and when no chunk holds
  a case's evidence span whole (``metadata.evidence`` in ``metadata.document``: the fact
  straddles a boundary the overlap does not cover), × STRADDLE_FACTOR.
- rag (retrieve_k): when no reference answer appears in the prompt (the retrieved
  context missed it), × MISSED_FACTOR; else × 1 / (1 + DISTRACTION·(chunks − 1)) for the
  chunks in the context (``[doc#i]`` markers): more chunks, more recall, more distraction.
- sections (parallel): sequential sections (parallel false) see the earlier ones and are
  SEQUENTIAL_BONUS more often right. Parallel sections' shorter latency is not a
  number here: each call's simulated latency is laid over the host's slots
  (``evaluation.pipelines._simulated_time``) at every time scale.
"""

from __future__ import annotations

import math
import re

from evaluation.pipelines._chunking import chunk_text
from evaluation.spec._params import GenerationParams
from evaluation.suites import Case

DEFAULT_NUM_CTX = 2048
CHUNK_PENALTY = 0.3
CHUNK_SCALE = 1500.0
STRADDLE_FACTOR = 0.35
MISSED_FACTOR = 0.15
DISTRACTION = 0.01
SEQUENTIAL_BONUS = 0.03
_CONTEXT_MARKER = re.compile(r"^\[[^\]\n]+#\d+\]", re.MULTILINE)


def is_pipeline_call(params: GenerationParams) -> bool:
    return any(v is not None for v in (params.chunk_size, params.retrieve_k, params.parallel))


def kept_tokens(params: GenerationParams, prompt_tokens: int) -> int:
    """What the server evaluates of a prompt: at most the context window."""
    return min(prompt_tokens, params.num_ctx or DEFAULT_NUM_CTX)


def pipeline_quality(
    quality: float, params: GenerationParams, case: Case | None, prompt: str, prompt_tokens: int
) -> float:
    """``quality`` of a one-call answer, as a pipeline call with ``params`` makes it."""
    kept = kept_tokens(params, prompt_tokens)
    if prompt_tokens > kept:
        quality *= kept / prompt_tokens
    if params.retrieve_k is not None:
        targets = case.targets if case is not None else ()
        if not any(t.casefold() in prompt.casefold() for t in targets):
            quality *= MISSED_FACTOR
        else:
            chunks = max(1, len(_CONTEXT_MARKER.findall(prompt)))
            quality /= 1 + DISTRACTION * (chunks - 1)
    elif params.chunk_size is not None:
        quality *= 1 - CHUNK_PENALTY * math.exp(-params.chunk_size / CHUNK_SCALE)
        if case is not None and _straddles(case, params.chunk_size, params.chunk_overlap or 0):
            quality *= STRADDLE_FACTOR
    if params.parallel is False:
        quality += SEQUENTIAL_BONUS
    return min(1.0, max(0.0, quality))


def _straddles(case: Case, size: int, overlap: int) -> bool:
    """Whether an evidence span of the case's document lies whole in no chunk."""
    document = case.metadata.get("document")
    doc_id = case.metadata.get("document_id")
    spans = [
        (e["start"], e["end"])
        for e in case.metadata.get("evidence") or ()
        if isinstance(e, dict) and (doc_id is None or e.get("document") == doc_id)
    ]
    if not isinstance(document, str) or not spans or overlap >= size:
        return False
    chunks = chunk_text(document, size, overlap)
    return any(not any(c.start <= s and e <= c.end for c in chunks) for s, e in spans)
