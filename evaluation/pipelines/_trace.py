"""What a case's pipeline did: its model calls (stages) and its wall time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True)
class RetrievedChunk:
    """A chunk a call's prompt was given as context, and its similarity to the query
    (its text is in the prompt: kept once)."""

    id: str
    similarity: float


@dataclass(frozen=True)
class StageRecord:
    """One model call of a case. ``start_s`` (when the call was made) is from the
    case's start; ``wait_s`` is its time waiting for a host slot, ``duration_s`` its
    service (the rest: requests and retry waits). Prompt tokens are the server's count
    (``prompt_eval_count``) for generations and the estimate for embeddings.

    The transcript: ``prompt`` (the messages sent, as role/content pairs; for an
    embedding, the one text embedded, or nothing for a batch), ``output`` (the text a
    generation returned) and ``retrieved`` (the chunks its context came from). ``shared``:
    a call made once for the whole run (the corpus's embeddings) by whichever case asked
    first; no config is charged for it."""

    stage: str
    kind: Literal["generate", "embed"]
    model: str
    host: str
    started_at: datetime
    start_s: float
    duration_s: float
    prompt_tokens: int | None = 0  # None: the server did not report it
    output_tokens: int = 0
    estimated_prompt_tokens: int = 0
    attempts: int = 1
    context_truncated: bool = False
    wait_s: float = 0.0
    prompt: tuple[tuple[str, str], ...] = ()
    output: str | None = None
    retrieved: tuple[RetrievedChunk, ...] = ()
    shared: bool = False


@dataclass(frozen=True)
class CaseTrace:
    """What a case's pipeline did: its calls and its wall time."""

    pipeline: str
    wall_s: float
    stages: tuple[StageRecord, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def context_truncated_calls(self) -> int:
        return sum(s.context_truncated for s in self.stages)
