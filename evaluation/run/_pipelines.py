"""Running one case through its pipeline: the handles' model calls, their slots and
their stage records.

Every call goes through a backend with retries (``backends.retry.with_retries``) and
holds a host slot: the lane's own slot when it is free, else a spare slot of any live
host serving the model (``SpareSlots``), else it waits for one of those. So parallel
maps and sections use what is free and never more than a host's slots. Each call is
recorded as a ``StageRecord``; a generation cut by the context window is flagged
(servers cut silently, see ``_truncation``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from evaluation.backends._sending import waiting_for_slot
from evaluation.backends._simulated_latency import embed_latency_s
from evaluation.backends.base import Backend, GenerationRequest, GenerationResult
from evaluation.backends.retry import RetryPolicy, embed_with_retries, generate_with_retries
from evaluation.errors import BackendError, EvalError, TryLater
from evaluation.pipelines._builtins import all_of
from evaluation.pipelines._chunking import estimate_tokens
from evaluation.pipelines._contract import Pipeline, PipelineOutput
from evaluation.pipelines._registry import resolve
from evaluation.pipelines._retrieval import Hit
from evaluation.pipelines._setting import SINGLE
from evaluation.pipelines._simulated_time import SimulatedTimeline
from evaluation.pipelines._trace import CaseTrace, RetrievedChunk, StageRecord
from evaluation.run._truncation import ServerCounts, context_cut
from evaluation.run._work import WorkItem, build_messages
from evaluation.suites import Message, Suite

T = TypeVar("T")
SlotFactory = Callable[[], contextlib.AbstractAsyncContextManager]

OLLAMA_DEFAULT_NUM_CTX = 2048  # what Ollama uses when a request sets no num_ctx
EMBED_BATCH = 32  # texts per embedding request


class PipelineFailed(EvalError):
    """A pipeline raised something other than a backend error: the case fails with it."""


class SpareSlot(Protocol):
    """A slot of ``host`` taken beyond the lane's own; ``release`` gives it back."""

    host: str

    async def release(self) -> None: ...


class SpareSlots(Protocol):
    """Free slots of the hosts serving a model: ``try_take`` one free now (None: none
    free), or ``wait_for`` one: the first spare given back or found free fills
    ``grant``, unless ``grant`` is done by then (cancelled, or filled by the lane)."""

    async def try_take(self, model: str) -> SpareSlot | None: ...

    def wait_for(self, model: str, grant: asyncio.Future) -> None: ...


class EmbeddingCache:
    """Embeddings computed once per run for a key (corpus, chunking, model): the first
    case asking computes them, every other case and config awaits the same result."""

    def __init__(self) -> None:
        self._futures: dict[tuple[Any, ...], asyncio.Future[list[list[float]]]] = {}
        self.computed = 0  # how many keys were embedded (benchmarks check "once")

    async def get(
        self, key: tuple[Any, ...], compute: Callable[[], Awaitable[list[list[float]]]]
    ) -> list[list[float]]:
        future = self._futures.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = asyncio.get_running_loop().create_future()
            self._futures[key] = future
            try:
                vectors = await compute()
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: a later case computes again
                raise
            self.computed += 1
            future.set_result(vectors)
            return vectors
        return await asyncio.shield(future)


@dataclass(frozen=True)
class SharedCalls:
    """What every case of a run shares: the hosts' backends and their spare slots (None:
    a case's calls take turns on its lane's slot) and the embedding cache."""

    backends: Mapping[str, Backend] = field(default_factory=dict)
    spare: SpareSlots | None = None
    embeddings: EmbeddingCache = field(default_factory=EmbeddingCache)


@dataclass(frozen=True)
class CaseRoute:
    """Where a case's calls go: the lane's host and slot, the retry policy, and what
    the run shares; ``lend``: offers the lane's slot, held but with no call of the case
    for it, to a call of another case waiting for one (the lane's next call then waits
    for a slot, first in line)."""

    backend: Backend
    policy: RetryPolicy
    slot: SlotFactory | None = None
    shared: SharedCalls = field(default_factory=SharedCalls)
    lend: Callable[[], None] | None = None


class _Handles:
    """The ``Handles`` a pipeline gets for one case (see ``_contract.Handles``)."""

    def __init__(self, item: WorkItem, suite: Suite, route: CaseRoute) -> None:
        self._item, self._suite, self._route = item, suite, route
        self._lane_busy = False
        self._lane_waiters: deque[asyncio.Future] = deque()  # calls waiting for the lane
        # every case gets one: a simulated call may also go to a spare simulated host
        self.timeline = SimulatedTimeline(route.backend.host.slots)
        self._started = time.perf_counter()
        self.stages: list[StageRecord] = []
        self.results: list[GenerationResult] = []

    async def generate(
        self,
        prompt: str | tuple[Message, ...],
        *,
        stage: str,
        model: str | None = None,
        retrieved: Sequence[Hit] = (),
    ) -> str:
        item = self._item
        case = dataclasses.replace(item.case, input=prompt)
        request = GenerationRequest(
            model=model or item.model,
            messages=build_messages(item.config, case, self._suite),
            params=item.params,
            case_id=item.case_uid,
            sample_index=item.sample_index,
        )
        estimate = estimate_tokens("\n".join(m.content for m in request.messages))

        async def call(
            backend: Backend, slot: SlotFactory | None, clock: _CallClock
        ) -> tuple[StageRecord, GenerationResult]:
            result, attempts = await generate_with_retries(
                backend, request, policy=self._route.policy, slot=clock.timed(slot)
            )
            record = StageRecord(
                stage=stage,
                kind="generate",
                model=request.model,
                host=backend.host.name,
                **self._spans(clock, backend, result.latency_s if result.simulated else None),
                prompt_tokens=result.prompt_eval_count,
                output_tokens=result.eval_count,
                estimated_prompt_tokens=estimate,
                attempts=attempts,
                context_truncated=context_cut(
                    ServerCounts(
                        result.prompt_eval_count,
                        result.eval_count,
                        result.done_reason,
                        request.params.num_predict,
                    ),
                    context=await _context_window(backend, request),
                    words_estimate=estimate,
                ),
                prompt=tuple((m.role, m.content) for m in request.messages),
                output=result.text,
                retrieved=tuple(RetrievedChunk(h.chunk.id, h.similarity) for h in retrieved),
            )
            return record, result

        record, result = await self._with_slot(request.model, call)
        self.stages.append(record)
        self.results.append(result)
        return result.text

    async def embed(
        self, texts: Sequence[str], *, model: str, stage: str = "embed", shared: bool = False
    ) -> list[list[float]]:
        """``shared``: computed once for the run (``embed_once``), not for this case."""
        batches = [list(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        parts = await all_of(self._embed_batch(b, model, stage, shared) for b in batches)
        return [vector for part in parts for vector in part]

    async def embed_once(
        self, key: tuple[Any, ...], texts: Sequence[str], *, model: str, stage: str = "embed"
    ) -> list[list[float]]:
        return await self._route.shared.embeddings.get(
            (*key, model), lambda: self.embed(texts, model=model, stage=stage, shared=True)
        )

    async def _embed_batch(
        self, texts: list[str], model: str, stage: str, shared: bool
    ) -> list[list[float]]:
        vectors: list[list[float]] = []

        async def call(
            backend: Backend, slot: SlotFactory | None, clock: _CallClock
        ) -> StageRecord:
            result, attempts = await embed_with_retries(
                backend, model, texts, policy=self._route.policy, slot=clock.timed(slot)
            )
            vectors.extend(result)
            estimate = sum(estimate_tokens(t) for t in texts)
            simulated = backend.host.kind == "simulated"
            return StageRecord(
                stage=stage,
                kind="embed",
                model=model,
                host=backend.host.name,
                **self._spans(clock, backend, embed_latency_s(len(texts)) if simulated else None),
                prompt_tokens=estimate,
                estimated_prompt_tokens=estimate,
                attempts=attempts,
                prompt=(("text", texts[0]),) if len(texts) == 1 else (),
                shared=shared,
            )

        self.stages.append(await self._with_slot(model, call))
        return vectors

    async def _with_slot(
        self,
        model: str,
        call: Callable[[Backend, SlotFactory | None, _CallClock], Awaitable[T]],
    ) -> T:
        """Run ``call`` on the lane's slot if free, else on a spare slot, else on
        whichever of the two comes free first; ``call`` gets the clock that tells its
        wait for a slot from its service."""
        route, clock = self._route, _CallClock()
        spare = await self._slot_for(model)
        clock.waited += time.perf_counter() - clock.asked
        if spare is None:
            try:
                return await call(route.backend, route.slot, clock)
            finally:
                self._free_lane()
        try:
            return await call(route.shared.backends[spare.host], None, clock)
        finally:
            await spare.release()

    async def _slot_for(self, model: str) -> SpareSlot | None:
        """A slot for a call of ``model``: None for the lane's (now marked busy), else a
        spare. A waiting call queues for both; the first to come free is its."""
        route, spare_slots = self._route, self._route.shared.spare
        lane_serves = route.backend.host.serves(model)
        if not lane_serves and spare_slots is None:
            raise PipelineFailed(f"host {route.backend.host.name} does not serve {model}")
        if lane_serves and not self._lane_busy:
            self._lane_busy = True
            return None
        if spare_slots is not None:
            spare = await spare_slots.try_take(model)
            if spare is not None:
                return spare
            if lane_serves and not self._lane_busy:  # freed while we asked
                self._lane_busy = True
                return None
        grant: asyncio.Future[SpareSlot | None] = asyncio.get_running_loop().create_future()
        if lane_serves:
            self._lane_waiters.append(grant)
        if spare_slots is not None:
            spare_slots.wait_for(model, grant)
        try:
            with waiting_for_slot():  # nothing on the wire: a stop does not wait for it
                return await grant
        except asyncio.CancelledError:
            if grant.done() and not grant.cancelled() and grant.exception() is None:
                granted = grant.result()  # came just as we were cancelled: hand it on
                if granted is None:
                    self._free_lane()
                else:
                    await granted.release()
            grant.cancel()
            raise

    def _free_lane(self) -> None:
        """Hand the lane's slot to the first call waiting for it, else mark it free and
        lend it to another case's waiting call: idle while this case's other calls ran
        on spare slots (a parallel section ended first, the assembly waiting for the
        rest), it left a slot of the host unused while calls waited
        (benchmarks/perf/pipeline_throughput.py --timeline)."""
        while self._lane_waiters:
            grant = self._lane_waiters.popleft()
            if not grant.done():
                grant.set_result(None)  # the lane stays busy: it is that call's now
                return
        self._lane_busy = False
        if self._route.lend is not None:
            self._route.lend()

    def _spans(
        self, clock: _CallClock, backend: Backend, simulated_s: float | None
    ) -> dict[str, Any]:
        """The stage record's times: measured, or for a simulated call its simulated
        latency laid over the slots (``_simulated_time``)."""
        spans = clock.spans(self._started)
        if simulated_s is None:
            return spans
        span = self.timeline.lay(simulated_s)
        return spans | {
            "start_s": span.issued_s,
            "wait_s": span.start_s - span.issued_s,
            "duration_s": span.end_s - span.start_s,
        }

    def wall_s(self) -> float:
        """The case's time so far: simulated when every call was, else wall time."""
        if self.results and all(r.simulated for r in self.results):
            return self.timeline.end_s
        return time.perf_counter() - self._started

    def timed(self) -> bool:
        """Whether ``wall_s`` is the case's latency: the servers' measured time (no call
        simulated) or the simulated one (every call simulated, laid over the slots).
        Not when simulated and real calls mixed: neither clock covers the case, and the
        wall time would count the simulated calls as the client's own overhead."""
        return len({r.simulated for r in self.results}) < 2


class _CallClock:
    """One call's time: waiting for a slot (before it has one, and for the lane's slot
    at each attempt) apart from its service (the rest, retry waits included)."""

    def __init__(self) -> None:
        self.asked, self.asked_at = time.perf_counter(), datetime.now(UTC)
        self.waited = 0.0

    def timed(self, slot: SlotFactory | None) -> SlotFactory | None:
        """``slot``, with the time taken to get it counted as waiting."""
        if slot is None:
            return None

        @contextlib.asynccontextmanager
        async def timed_slot() -> AsyncIterator[None]:
            entered = time.perf_counter()
            async with slot():
                self.waited += time.perf_counter() - entered
                yield

        return timed_slot

    def spans(self, case_started: float) -> dict[str, Any]:
        """The stage record's ``started_at``, ``start_s``, ``wait_s`` and ``duration_s``."""
        total = time.perf_counter() - self.asked
        return {
            "started_at": self.asked_at,
            "start_s": self.asked - case_started,
            "wait_s": self.waited,
            "duration_s": max(0.0, total - self.waited),
        }


async def _context_window(backend: Backend, request: GenerationRequest) -> int | None:
    """The context window the server applied: on Ollama the request's ``num_ctx``, else
    Ollama's default; on an OpenAI-compatible server its own launch setting, where it
    says (``num_ctx`` is not sent there)."""
    if backend.host.kind in ("ollama", "simulated"):
        return request.params.num_ctx or OLLAMA_DEFAULT_NUM_CTX
    context_window = getattr(backend, "context_window", None)
    return await context_window() if context_window is not None else None


def pipeline_of(item: WorkItem) -> tuple[Pipeline, dict[str, Any]]:
    """The config's pipeline and the parameters it gets: its own (from the pipeline
    setting) and the generation parameters it declares (chunk_size & co.)."""
    setting = item.config.pipeline
    pipeline = resolve(setting.name if setting is not None else SINGLE)
    params = setting.params if setting is not None else {}
    for name, param in pipeline.parameters.items():
        if param.in_table:
            params[name] = getattr(item.config.params, name)
    return pipeline, params


async def run_case(
    item: WorkItem, suite: Suite, route: CaseRoute
) -> tuple[GenerationResult, int, CaseTrace]:
    """Run ``item``'s case through its config's pipeline; returns the case's result (the
    output, its counters summed over the calls, its wall time as latency), the most
    attempts any call needed, and the trace. Backend errors propagate (the caller tells
    a failing request from a host that is gone), and so does ``TryLater`` (a slot write
    that found the run's Prefect API busy for its whole budget: the run stops for later,
    the case not failed); anything else the pipeline raises is a ``PipelineFailed``."""
    pipeline, params = pipeline_of(item)
    handles = _Handles(item, suite, route)
    try:
        output = await pipeline.function(item.case, params, handles)
    except (BackendError, PipelineFailed, TryLater):
        raise
    except Exception as exc:
        raise PipelineFailed(
            f"pipeline {pipeline.name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        handles.timeline.close()
    wall = handles.wall_s()
    if isinstance(output, PipelineOutput):
        text, metadata = output.text, output.metadata
    elif isinstance(output, str):
        text, metadata = output, {}
    else:
        raise PipelineFailed(
            f"pipeline {pipeline.name} returned {type(output).__name__}; expected text "
            "or a PipelineOutput"
        )
    trace = CaseTrace(pipeline.name, wall, tuple(handles.stages), metadata)
    attempts = max((s.attempts for s in handles.stages), default=1)
    latency = wall if handles.timed() else None  # None: not measured
    result = _case_result(text, handles.results, latency, pipeline.name)
    return result, attempts, trace


def _case_result(
    text: str, results: list[GenerationResult], latency_s: float | None, name: str
) -> GenerationResult:
    """The single pipeline's one result as it is; a multi-call case's counters summed,
    its latency the case's (None: not measured, ``_Handles.timed``)."""
    if name == SINGLE and len(results) == 1:
        return dataclasses.replace(results[0], text=text)
    if not results:
        raise PipelineFailed(f"pipeline {name} made no generation")
    last = results[-1]
    return GenerationResult(
        text=text,
        done_reason=last.done_reason,
        latency_s=latency_s,
        ttft_s=None,
        prompt_eval_count=_total([r.prompt_eval_count for r in results]),
        eval_count=sum(r.eval_count for r in results),
        load_duration_ns=sum(r.load_duration_ns for r in results),
        prompt_eval_duration_ns=sum(r.prompt_eval_duration_ns for r in results),
        eval_duration_ns=sum(r.eval_duration_ns for r in results),
        total_duration_ns=sum(r.total_duration_ns for r in results),
        simulated=any(r.simulated for r in results),
    )


def _total(counts: list[int | None]) -> int | None:
    """The sum of the calls' counts; None when any call's was not reported (a partial
    sum would pass for the whole)."""
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
