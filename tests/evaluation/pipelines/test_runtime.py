"""The pipeline runtime without Prefect: calls through a fake backend, spare slots,
truncation flags, failures, the embedding cache and the plan's context warnings."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

import pytest

from evaluation.backends.base import GenerationRequest, GenerationResult
from evaluation.backends.retry import RetryPolicy
from evaluation.pipelines import PipelineSetting
from evaluation.run._context_check import context_warnings
from evaluation.run._pipelines import (
    CaseRoute,
    EmbeddingCache,
    PipelineFailed,
    SharedCalls,
    run_case,
)
from evaluation.run._truncation import ServerCounts, context_cut
from evaluation.run._work import WorkItem, build_messages
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case, Message, Suite

HOST = HostSpec("a", "http://a", slots=3)


@dataclass
class FakeBackend:
    """Answers after ``delay_s`` with the prompt's word count; counts calls in flight."""

    host: HostSpec = HOST
    delay_s: float = 0.01
    num_ctx_cut: bool = True
    in_flight: int = 0
    peak: int = 0
    embedded: list[str] = field(default_factory=list)
    requests: list[GenerationRequest] = field(default_factory=list)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        words = sum(len(m.content.split()) for m in request.messages)
        ctx = request.params.num_ctx or 2048
        return GenerationResult(
            text=f"saw {words}",
            done_reason="stop",
            latency_s=self.delay_s,
            ttft_s=None,
            prompt_eval_count=min(words, ctx) if self.num_ctx_cut else words,
            eval_count=2,
        )

    async def embed(self, model: str, texts) -> list[list[float]]:
        self.embedded += list(texts)
        return [[float(len(t)), 1.0] for t in texts]

    async def list_models(self):
        return []

    async def aclose(self) -> None:
        return None


class CountingSpares:
    """Spare slots of the fake host: its slots minus the lane's, counted; a spare given
    back goes to the first call waiting."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.waiting: list[asyncio.Future] = []

    async def try_take(self, model: str):
        if self.free == 0:
            return None
        self.free -= 1
        return self._spare()

    def wait_for(self, model: str, grant: asyncio.Future) -> None:
        self.waiting.append(grant)

    def _spare(self):
        spares = self

        class Spare:
            host = "a"

            async def release(self) -> None:
                while spares.waiting:
                    grant = spares.waiting.pop(0)
                    if not grant.done():
                        grant.set_result(self)
                        return
                spares.free += 1

        return Spare()


SUITE = Suite("s", "1", "qa", ("contains",), ())


def item(name: str, params: dict | None = None, *, document: str = "", **gen) -> WorkItem:
    pipeline = PipelineSetting.of(name, params or {}) if name != "single" else None
    config = Config("m", GenerationParams(**gen), PromptTemplate("default"), pipeline)
    case = Case("c1", "What?", ("x",), metadata={"document": document} if document else {})
    return WorkItem(config, case, "s")


MAP_REDUCE = {
    "unit": "tokens",
    "mode": "parallel",
    "map_prompt": "{chunk}",
    "reduce_prompt": "{partials}",
    "refine_prompt": "{answer} {chunk}",
}


def test_parallel_maps_use_free_slots_and_never_more():
    backend = FakeBackend()
    document = " ".join(f"w{i}" for i in range(100))  # chunks of 10: 10 maps
    work = item("map_reduce", MAP_REDUCE, document=document, chunk_size=10, chunk_overlap=0)
    spares = CountingSpares(free=2)  # 3 slots: the lane's and two spare
    route = CaseRoute(backend, RetryPolicy(), shared=SharedCalls({"a": backend}, spares))
    result, _, trace = asyncio.run(run_case(work, SUITE, route))
    assert backend.peak == 3 and spares.free == 2  # all three used, every spare given back
    assert [s.stage for s in trace.stages].count("map") == 10
    assert trace.stages[-1].stage == "reduce"
    assert result.eval_count == 22 and result.latency_s == trace.wall_s
    alone = CaseRoute(FakeBackend(), RetryPolicy())  # no spare slots: one call at a time
    asyncio.run(run_case(work, SUITE, alone))
    assert alone.backend.peak == 1


def test_a_prompt_longer_than_num_ctx_is_flagged():
    def cut(estimate: int, prompt: int, num_ctx: int) -> bool:
        counts = ServerCounts(prompt, 10, "stop", 64)
        return context_cut(counts, context=num_ctx, words_estimate=estimate)

    assert cut(estimate=3000, prompt=2048, num_ctx=2048)
    assert not cut(estimate=3000, prompt=3900, num_ctx=4096)
    assert not cut(estimate=100, prompt=90, num_ctx=2048)
    long = item("single", num_ctx=50)
    long = WorkItem(long.config, Case("c1", "word " * 80, ("x",)), "s")
    _, _, trace = asyncio.run(run_case(long, SUITE, CaseRoute(FakeBackend(), RetryPolicy())))
    assert trace.context_truncated_calls == 1 and trace.stages[0].estimated_prompt_tokens == 80


def test_a_raising_pipeline_fails_its_case_with_the_error():
    work = item("map_reduce", MAP_REDUCE, chunk_size=10, chunk_overlap=0)  # no document
    work = WorkItem(work.config, Case("c1", "", ("x",)), "s")
    with pytest.raises(PipelineFailed, match="no document text"):
        asyncio.run(run_case(work, SUITE, CaseRoute(FakeBackend(), RetryPolicy())))


def test_embedding_cache_computes_once_for_concurrent_askers():
    cache, calls = EmbeddingCache(), []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.01)
        return [[1.0]]

    async def main():
        return await asyncio.gather(*(cache.get(("k",), compute) for _ in range(5)))

    assert asyncio.run(main()) == [[[1.0]]] * 5 and calls == [1] and cache.computed == 1


def test_plan_warns_when_a_chunk_cannot_fit_num_ctx():
    """Chunks of 1,000 words fit num_ctx 2048 in words but not in tokens (~7,000
    characters); chunks of 300 words fit in both."""
    document = " ".join(f"word{i:02d}" for i in range(2000))

    def work(size: int) -> WorkItem:
        return item(
            "map_reduce",
            MAP_REDUCE,
            document=document,
            chunk_size=size,
            chunk_overlap=0,
            num_ctx=2048,
        )

    works = [work(1000), work(300)]
    warnings = context_warnings(works, [HOST])
    assert len(warnings) == 1 and "beyond num_ctx 2048" in warnings[0]
    assert works[0].config.hash in warnings[0]


def test_single_sends_what_one_call_always_sent_chat_turns_included():
    chat = (Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Why?"))
    template = PromptTemplate("brief", "Briefly: {input}")
    work = WorkItem(Config("m", GenerationParams(), template), Case("c", chat, ("x",)), "s")
    backend = FakeBackend()
    result, _, trace = asyncio.run(run_case(work, SUITE, CaseRoute(backend, RetryPolicy())))
    assert backend.requests[0].messages == build_messages(work.config, work.case, SUITE)
    assert backend.requests[0].messages[-1].content == "Briefly: Why?"
    assert [s.stage for s in trace.stages] == ["generate"] and trace.pipeline == "single"
    assert result.latency_s == 0.01  # the call's own result, not the case's wall time


@dataclass
class HalfSimulated(FakeBackend):
    """Answers the reduce call as the simulated backend would (simulated, its latency
    made up), the maps as a real server."""

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        result = await super().generate(request)
        reduce = "partials:" in request.messages[-1].content
        return dataclasses.replace(result, simulated=True, latency_s=9.0) if reduce else result


def test_a_case_mixing_simulated_and_real_calls_has_no_latency():
    """Issue 28.5: neither the real clock nor the simulated one covers such a case; its
    wall time would count the simulated call as the client's overhead. Not measured."""
    backend = HalfSimulated()
    document = " ".join(f"w{i}" for i in range(40))
    params = MAP_REDUCE | {"reduce_prompt": "partials: {partials}"}
    work = item("map_reduce", params, document=document, chunk_size=10, chunk_overlap=0)
    result, _, trace = asyncio.run(run_case(work, SUITE, CaseRoute(backend, RetryPolicy())))
    assert [s.stage for s in trace.stages] == ["map"] * 4 + ["reduce"]
    assert result.simulated and result.latency_s is None


def test_a_case_whose_call_waits_for_a_spare_slot_is_not_in_flight_for_a_stop():
    """A pipeline's call waiting for the lane's slot or a spare one has nothing on the wire
    (granted after a stop, it parks, and the case is redone whole by the rerun): a stop
    neither counts its case as in flight nor waits for it (it counted it)."""
    from evaluation.run._in_flight import case_in_flight, cases_in_flight

    answer = asyncio.Event()

    class HeldBackend(FakeBackend):
        async def generate(self, request: GenerationRequest) -> GenerationResult:
            await answer.wait()
            return await super().generate(request)

    backend = HeldBackend()
    document = " ".join(f"w{i}" for i in range(30))  # 3 maps, on the lane's slot alone
    work = item("map_reduce", MAP_REDUCE, document=document, chunk_size=10, chunk_overlap=0)
    spares = CountingSpares(free=0)
    route = CaseRoute(backend, RetryPolicy(), shared=SharedCalls({"a": backend}, spares))

    async def main() -> None:
        async def case() -> None:
            async with case_in_flight():
                await run_case(work, SUITE, route)

        task = asyncio.create_task(case())
        while len(spares.waiting) < 2:  # one map on the lane's slot, two wait
            await asyncio.sleep(0)
        assert cases_in_flight() == 0
        answer.set()
        await task
        assert cases_in_flight() == 0

    asyncio.run(main())
