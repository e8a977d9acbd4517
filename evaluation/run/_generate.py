"""Generating a chunk of work items on one host: the unit a pipeline task runs.

Each item is retried on its own (``generate_with_retries``) with the host's slot held
only around each HTTP attempt. A generation that runs out of retries fails on its own;
if the host then does not answer at all, the chunk ends early and hands the rest back,
so the dispatcher can move it to another host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from evaluation.backends.base import Backend, GenerationRequest
from evaluation.backends.retry import RetryPolicy, generate_with_retries
from evaluation.errors import BackendError, BackendUnavailable
from evaluation.run._work import GenerationRecord, WorkItem, build_messages
from evaluation.suites import Suite

SlotFactory = Callable[[], contextlib.AbstractAsyncContextManager]
RecordSink = Callable[[Sequence[GenerationRecord]], Awaitable[None]]


@dataclass
class ChunkOutcome:
    """What a chunk did: records made, items left undone, and whether the host is down."""

    records: list[GenerationRecord] = field(default_factory=list)
    unfinished: list[WorkItem] = field(default_factory=list)
    host_down_reason: str | None = None

    @property
    def host_down(self) -> bool:
        return self.host_down_reason is not None


def request_for(item: WorkItem, suite: Suite) -> GenerationRequest:
    return GenerationRequest(
        model=item.config.model,
        messages=build_messages(item.config, item.case, suite),
        params=item.config.params,
        case_id=item.case_uid,
        sample_index=item.sample_index,
    )


async def _answers(backend: Backend) -> bool:
    """Whether the host still answers at all: tells "this request keeps failing" apart
    from "the host is gone" after a generation ran out of retries."""
    try:
        await backend.list_models()
    except BackendError:
        return False
    return True


async def run_chunk(
    backend: Backend,
    items: Sequence[WorkItem],
    *,
    suite: Suite,
    policy: RetryPolicy,
    sink: RecordSink,
    slot: SlotFactory | None = None,
) -> ChunkOutcome:
    """Generate ``items`` one after another on ``backend``, storing each outcome through
    ``sink`` as soon as it is known (so a killed run loses at most the item in flight)."""
    outcome = ChunkOutcome()
    host = backend.host.name
    for position, item in enumerate(items):
        try:
            result, attempts = await generate_with_retries(
                backend, request_for(item, suite), policy=policy, slot=slot
            )
            record = GenerationRecord(item, host, attempts, result=result)
        except BackendUnavailable as exc:
            if not await _answers(backend):
                outcome.unfinished = list(items[position:])
                outcome.host_down_reason = f"{host} unreachable: {exc}"
                return outcome
            attempts = getattr(exc, "attempts", 1)
            record = GenerationRecord(item, host, attempts, error=f"{type(exc).__name__}: {exc}")
        except BackendError as exc:
            attempts = getattr(exc, "attempts", 1)
            record = GenerationRecord(item, host, attempts, error=f"{type(exc).__name__}: {exc}")
        await sink([record])
        outcome.records.append(record)
    return outcome
