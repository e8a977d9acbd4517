"""``retrieval_recall_at_k``: did the pipeline retrieve the evidence a question needs?

The gold is in the case's metadata, in either form:

- ``evidence``: a list of ``{"document": id, "start": s, "end": e}`` character spans of
  corpus documents (independent of chunking, so one suite serves every chunk size);
  a span counts as retrieved when one retrieved chunk of that document contains all of
  it (``start <= s`` and ``e <= end``): a fact cut in two by a chunk boundary is not
  retrieved unless an overlapping chunk holds it whole.
- ``gold_chunk_ids``: a list of chunk ids, retrieved when the same id was retrieved
  (for a corpus whose chunks are fixed passages).

What was retrieved is the generation's pipeline record (``GenerationResult.metadata``):
``retrieved_spans`` (``[[document, start, end], ...]``) for ``evidence``,
``retrieved_chunk_ids`` for ``gold_chunk_ids``; the k is the config's (``retrieve_k``,
and fewer when ``min_similarity`` cut the list). Per case: 1 when every gold item was
retrieved, else 0 (one gold item per question is the usual case); NaN when the case has
no gold or the generation no retrieval record (a pipeline other than ``rag``), the
latter with its reason in the detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.errors import MetricError
from evaluation.metrics._base import Scored
from evaluation.suites import Case

SPANS = "retrieved_spans"
CHUNK_IDS = "retrieved_chunk_ids"
NO_RECORD = "not scored: the generation has no retrieval record (not a rag pipeline?)"


def retrieval_recall(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> Scored:
    """1.0 when all of the case's gold evidence was retrieved (module docstring)."""
    values = np.full(len(outputs), np.nan)
    details: list[str | None] = [None] * len(outputs)
    for i, case in enumerate(cases):
        evidence, gold_ids = _gold(case)
        if not evidence and not gold_ids:
            continue
        record: Mapping[str, Any] = results[i].metadata if results is not None else {}
        if evidence and SPANS in record:
            spans = _spans(record[SPANS], case.id)
            found = [_covered(e, spans) for e in evidence]
            values[i], details[i] = float(all(found)), _why(found, len(spans), "evidence span")
        elif gold_ids and CHUNK_IDS in record:
            retrieved = {str(x) for x in record[CHUNK_IDS] or ()}
            found = [g in retrieved for g in gold_ids]
            values[i], details[i] = float(all(found)), _why(found, len(retrieved), "gold chunk")
        else:
            details[i] = NO_RECORD
    return Scored(values, tuple(details))


def _why(found: list[bool], n_retrieved: int, gold: str) -> str:
    """The score in words: what was retrieved against what the case needs."""
    if n_retrieved == 0:
        return (
            "nothing was retrieved: no chunk was similar enough to the question "
            "(none passed the config's min_similarity), so no evidence could be"
        )
    missing = found.count(False)
    chunks = f"{n_retrieved} chunk{'s' * (n_retrieved != 1)} retrieved"
    if missing == 0:
        return f"every {gold} of the case is in the {chunks}"
    return f"{missing} of {len(found)} {gold}{'s' * (len(found) != 1)} not in the {chunks}"


def _gold(case: Case) -> tuple[list[tuple[str, int, int]], list[str]]:
    """The case's evidence spans and gold chunk ids; MetricError naming the case when
    they are malformed (a suite error, not an output's)."""
    raw_evidence = case.metadata.get("evidence") or []
    raw_ids = case.metadata.get("gold_chunk_ids") or []
    try:
        evidence = [(str(e["document"]), int(e["start"]), int(e["end"])) for e in raw_evidence]
    except (KeyError, TypeError, ValueError) as exc:
        raise MetricError(
            f"retrieval_recall_at_k: case '{case.id}': evidence must be a list of "
            f'{{"document", "start", "end"}} objects ({exc!r})'
        ) from exc
    if not isinstance(raw_ids, list):
        raise MetricError(f"retrieval_recall_at_k: case '{case.id}': gold_chunk_ids is not a list")
    return evidence, [str(x) for x in raw_ids]


def _spans(raw: Any, case_id: str) -> list[tuple[str, int, int]]:
    try:
        return [(str(doc), int(start), int(end)) for doc, start, end in raw or ()]
    except (TypeError, ValueError) as exc:
        raise MetricError(
            f"retrieval_recall_at_k: case '{case_id}': retrieved_spans must be "
            f"[[document, start, end], ...] ({exc!r})"
        ) from exc


def _covered(evidence: tuple[str, int, int], spans: list[tuple[str, int, int]]) -> bool:
    document, start, end = evidence
    return any(doc == document and s <= start and end <= e for doc, s, e in spans)
