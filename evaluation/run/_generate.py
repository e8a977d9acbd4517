"""Generating a chunk of work items on one host: the unit a generation task runs.

Each item's case runs through its config's pipeline (``evaluation.run._pipelines``),
every model call retried on its own with a host slot held only around each HTTP
attempt. A generation that runs out of retries fails on its own;
if the host then does not answer at all, the chunk ends early and hands the rest back,
so the dispatcher can move it to another host. A request that timed out on a host that
answered a request within ``ANSWERED_RECENTLY_S`` fails on its own
even when the host's model list does not answer either: the host is slow (busy with the
request given up on: llama.cpp finishes it), not down; unless another host of the run
serving its model has answered since (``others``): then this host is silent where that
one is not, and it is checked as any other (a host stopped mid-run beside a healthy one
kept its lanes sending, failing a round of generations per timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from evaluation.backends._sending import sending_stopped
from evaluation.backends.base import Backend
from evaluation.backends.retry import ON_ATTEMPT_FAILED, FailedAttempt, RetryPolicy
from evaluation.errors import BackendError, BackendOverloaded, BackendTimeout, BackendUnavailable
from evaluation.run._chunk import as_chunk
from evaluation.run._in_flight import case_in_flight
from evaluation.run._pipelines import CaseRoute, PipelineFailed, SharedCalls, run_case
from evaluation.run._work import GenerationRecord, WorkItem, WorkKey
from evaluation.spec import HostSpec
from evaluation.suites import Suite
from evaluation.wording import counted

SlotFactory = Callable[[], contextlib.AbstractAsyncContextManager]
RecordSink = Callable[[Sequence[GenerationRecord]], Awaitable[None]]

ANSWERED_RECENTLY_S = 120.0
"""A host that answered within this long is slow when a request times out, not down."""

clock: Callable[[], float] = time.monotonic
_answered_at: dict[HostSpec, float] = {}  # by host: an answer to any run of this process


@dataclass
class ChunkOutcome:
    """What a chunk did: records made, items left undone, and whether the host is down.
    A record is kept here without its output, pipeline trace and failed attempts
    (``slim``): stored already, they are of no use to what reads the outcome (counts,
    latencies, tokens), and 64 lanes' chunks of 100 held 12,800 of them at once."""

    records: list[GenerationRecord] = field(default_factory=list)
    unfinished: list[WorkItem] = field(default_factory=list)
    host_down_reason: str | None = None
    # the failed attempts of the unfinished item that was in flight, for its next host
    earlier: dict[WorkKey, tuple[FailedAttempt, ...]] = field(default_factory=dict)
    overloaded: bool = False  # not down: it answered 503 to every try (``host_down_reason``)

    @property
    def host_down(self) -> bool:
        return self.host_down_reason is not None


async def _answers(backend: Backend) -> bool:
    """Whether the host still answers at all: tells "this request keeps failing" apart
    from "the host is gone" after a generation ran out of retries."""
    try:
        await backend.list_models()
    except BackendError:
        return False
    return True


def _slow(backend: Backend, model: str, others: Collection[HostSpec]) -> bool:
    """Whether ``backend``'s host, a request for ``model`` timed out on it, is slow rather
    than perhaps down: it answered within ``ANSWERED_RECENTLY_S`` and no other host of
    ``others`` serving ``model`` has answered since (a silent host beside one that
    answers is checked, and its work moves there if it is down)."""
    answered = _answered_at.get(backend.host)
    if answered is None or clock() - answered > ANSWERED_RECENTLY_S:
        return False
    return not any(
        host != backend.host and host.serves(model) and _answered_at.get(host, answered) > answered
        for host in others
    )


async def _is_down(
    exc: BackendUnavailable, backend: Backend, model: str, others: Collection[HostSpec]
) -> bool:
    """Whether ``backend``'s host is gone, after a request to it for ``model`` ran out of
    tries (``others``: the run's hosts)."""
    if isinstance(exc, BackendTimeout) and _slow(backend, model, others):
        return False  # slow: its model list may wait behind the request given up on
    return not await _answers(backend)


def host_down_reason(exc: BackendError, host: str) -> str:
    """Why ``host`` is down, for every model it serves: the error less the host and the
    model of the request that found it down (a gemma3 item's reason named smollm2's).
    A host that took the request and never answered is "not answering", not
    unreachable; one that answered 503 to every try is "overloaded", not down."""
    name = exc.host or host
    text = str(exc).removeprefix(f"{name} (model '{exc.model}'): ").removeprefix(f"{name}: ")
    if isinstance(exc, BackendOverloaded):
        tries = getattr(exc, "attempts", 1)
        return f"{host} answered 503 (overloaded) to {counted(tries, 'try', 'tries')}: {text}"
    state = "not answering" if isinstance(exc, BackendTimeout) else "unreachable"
    return f"{host} {state}: {text}"


def _failed(item: WorkItem, host: str, exc: Exception) -> GenerationRecord:
    attempts = getattr(exc, "attempts", 1)
    return GenerationRecord(item, host, attempts, error=f"{type(exc).__name__}: {exc}")


async def run_chunk(
    backend: Backend,
    items: Sequence[WorkItem],
    *,
    suite: Suite,
    policy: RetryPolicy,
    sink: RecordSink,
    slot: SlotFactory | None = None,
    shared: SharedCalls | None = None,
    lend: Callable[[], None] | None = None,
    others: Collection[HostSpec] = (),
) -> ChunkOutcome:
    """Run ``items``' cases one after another through their pipelines on ``backend``
    (``shared``: the other hosts' spare slots and the run's embedding cache; ``lend``:
    see ``CaseRoute``; ``others``: the run's hosts, see ``_slow``), storing each outcome
    through ``sink`` as soon as it is known (so a killed run loses at most the case in
    flight, which a rerun redoes whole). Items
    are claimed one at a time: what another lane took from ``items`` (a ``Chunk``) is
    not run here. Once the process is stopping (``stop_sending``) no new case starts;
    the one in flight is counted until its record is handed over
    (``evaluation.run._in_flight``)."""
    outcome = ChunkOutcome()
    host = backend.host.name
    route = CaseRoute(backend, policy, slot, shared or SharedCalls(), lend)
    chunk = as_chunk(items)  # an idle lane of another host may take what is not started
    while (item := chunk.start_next()) is not None:
        if sending_stopped():  # the process is about to exit: start nothing new
            await asyncio.Event().wait()
        async with case_in_flight():
            failed: list[FailedAttempt] = []
            token = ON_ATTEMPT_FAILED.set(failed.append)
            try:
                result, attempts, trace = await run_case(item, suite, route)
                answered = _answered_at[backend.host] = clock()
                record = GenerationRecord(
                    item, host, attempts, result=result, trace=trace, answered_at=answered
                )
            except BackendUnavailable as exc:
                if await _is_down(exc, backend, item.model, others):
                    outcome.unfinished = [item, *chunk.rest()]
                    outcome.earlier = {item.key: (*chunk.earlier.get(item.key, ()), *failed)}
                    outcome.host_down_reason = host_down_reason(exc, host)
                    return outcome
                record = _failed(item, host, exc)
            except BackendOverloaded as exc:
                if exc.host not in (None, host):  # another host's (an embedding call's)
                    record = _failed(item, host, exc)
                else:  # 503 to every try: the host refuses work for now; nothing is lost
                    outcome.unfinished = [item, *chunk.rest()]
                    outcome.earlier = {item.key: (*chunk.earlier.get(item.key, ()), *failed)}
                    outcome.host_down_reason = host_down_reason(exc, host)
                    outcome.overloaded = True
                    return outcome
            except (BackendError, PipelineFailed) as exc:
                record = _failed(item, host, exc)
            finally:
                ON_ATTEMPT_FAILED.reset(token)
            record = replace(record, failed_attempts=(*chunk.earlier.get(item.key, ()), *failed))
            await sink([record])
        outcome.records.append(slim(record))
    return outcome


def slim(record: GenerationRecord) -> GenerationRecord:
    """``record`` less its output, metadata, trace and failed attempts."""
    result = record.result
    if result is not None:
        result = replace(result, text="", metadata={})
    return replace(record, result=result, trace=None, failed_attempts=())
