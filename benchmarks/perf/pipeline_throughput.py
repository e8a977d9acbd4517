"""Pipelines against one stand-in Ollama host in its own process (4 slots, 200 ms per
request by default), through ``evaluation.run._dispatch`` + ``evaluation.run._generate.run_chunk``
and the pipeline runtime, with slots held per call from an in-process pool of the host's
slots (the Prefect limits are left out: host_pool.py measures their overhead).

Figures:

- ``map_reduce`` with parallel maps over many documents: requests served / (wall ×
  capacity), capacity = slots / latency; the host's peak of requests in flight (must not
  pass its slots); client CPU per model call;
- a 30-document corpus for ``rag`` under 3 configs sharing a chunking and 1 with
  another: embedding requests, and the most times any chunk was embedded (must be 1);
- wall time on the same few documents (fewer cases than slots, so slots are free):
  map_reduce parallel vs refine, sections parallel vs sequential.

    .venv/bin/python benchmarks/perf/pipeline_throughput.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evaluation.backends import OllamaBackend  # noqa: E402
from evaluation.backends.retry import RetryPolicy  # noqa: E402
from evaluation.pipelines import PipelineSetting  # noqa: E402
from evaluation.pipelines._parameters import PARAMETERS  # noqa: E402
from evaluation.pipelines._retrieval import corpus_chunks  # noqa: E402
from evaluation.run._dispatch import dispatch  # noqa: E402
from evaluation.run._generate import ChunkOutcome, run_chunk  # noqa: E402
from evaluation.run._pipelines import SharedCalls  # noqa: E402
from evaluation.run._work import WorkItem  # noqa: E402
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate  # noqa: E402
from evaluation.suites import Case, Suite  # noqa: E402
from tests.support.standin_process import StandInProcess  # noqa: E402

MODEL, EMBED = "bench:8b", "nomic-embed-text"
WORDS = ["revenue", "margin", "dividend", "auditor", "board", "outlook", "risk", "growth"]
SUITE = Suite("bench", "1", "qa", ("contains",), ())


class LocalSlots:
    """The host's slots in this process: a call takes one (waiting), a spare is taken
    only when free now; ``peak`` is the most ever held."""

    def __init__(self, host: HostSpec) -> None:
        self.host, self.held, self.peak = host, 0, 0
        self._freed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._freed:
            await self._freed.wait_for(lambda: self.held < self.host.slots)
            self._take()
        try:
            yield
        finally:
            await self._give()

    def _take(self) -> None:
        self.held += 1
        self.peak = max(self.peak, self.held)

    async def _give(self) -> None:
        async with self._freed:
            self.held -= 1
            self._freed.notify_all()

    async def try_take(self, model: str):
        if self.held >= self.host.slots:
            return None
        self._take()
        slots = self

        class Spare:
            host = slots.host.name

            async def release(self) -> None:
                await slots._give()

        return Spare()


def document(n_words: int, seed: int) -> str:
    return " ".join(f"{WORDS[(i * 5 + seed) % len(WORDS)]}{i}" for i in range(n_words))


def config(name: str, own: dict[str, Any], **gen: Any) -> Config:
    defaults = {
        k: p.default
        for k, p in PARAMETERS.items()
        if not p.in_table and isinstance(p.default, str) and p.default
    }
    wanted = {k: v for k, v in defaults.items() if k in _OWN[name]} | own
    return Config(
        MODEL,
        GenerationParams(num_predict=32, **gen),
        PromptTemplate("default"),
        PipelineSetting.of(name, wanted),
    )


_OWN = {
    "map_reduce": ("unit", "mode", "map_prompt", "reduce_prompt", "refine_prompt"),
    "rag": ("unit", "answer_prompt", "corpus"),
    "sections": ("assembly_prompt",),
}


def items(cfgs: list[Config], n_cases: int, n_words: int) -> list[WorkItem]:
    cases = [
        Case(f"d{i}", "Summarise.", ("x",), metadata={"document": document(n_words, i)})
        for i in range(n_cases)
    ]
    return [WorkItem(c, case, SUITE.name) for c in cfgs for case in cases]


async def sweep(host: HostSpec, work: list[WorkItem]) -> tuple[float, float, int, int]:
    """Run ``work``: wall s, client CPU s, model calls, peak slots held."""
    backend = OllamaBackend(host)
    slots = LocalSlots(host)
    shared = SharedCalls({host.name: backend}, slots)
    calls = 0

    async def sink(records) -> None:
        nonlocal calls
        calls += sum(len(r.trace.stages) for r in records if r.trace is not None)

    async def run(h: HostSpec, chunk: list[WorkItem]) -> ChunkOutcome:
        return await run_chunk(
            backend,
            chunk,
            suite=SUITE,
            policy=RetryPolicy(),
            sink=sink,
            slot=slots.slot,
            shared=shared,
        )

    started, cpu = time.perf_counter(), time.process_time()
    try:
        report = await dispatch(work, [host], run)
    finally:
        await backend.aclose()
    assert report.failed == 0, report
    return time.perf_counter() - started, time.process_time() - cpu, calls, slots.peak


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--cases", type=int, default=24, help="documents for the throughput run")
    args = parser.parse_args()
    port = free_port()
    process = StandInProcess(
        port, slots=args.slots, latency_ms=args.latency_ms, models=[MODEL, EMBED]
    ).start()
    host = HostSpec("bench", process.url, args.slots)
    figures: dict[str, Any] = {"slots": args.slots, "latency_ms": args.latency_ms}
    try:
        # 1. throughput: 300-word documents in chunks of 60 (overlap 10): 6 maps + reduce
        mr = config("map_reduce", {"mode": "parallel"}, chunk_size=60, chunk_overlap=10)
        before = process.stats()["requests"]
        wall, cpu, calls, peak = asyncio.run(sweep(host, items([mr], args.cases, 300)))
        after = process.stats()
        served = after["requests"] - before
        capacity = args.slots / (args.latency_ms / 1000)
        figures["map_reduce_parallel"] = {
            "cases": args.cases,
            "model_calls": calls,
            "wall_s": round(wall, 2),
            "share_of_capacity": round(served / (wall * capacity), 3),
            "host_peak_in_flight": after["max_in_flight"],
            "client_slots_peak": peak,
            "client_cpu_ms_per_call": round(1000 * cpu / calls, 2),
        }
        # the same number of one-call cases: what the machine's load leaves of capacity
        single = Config(MODEL, GenerationParams(num_predict=32), PromptTemplate("default"))
        before = process.stats()["requests"]
        wall, cpu, calls, _peak = asyncio.run(sweep(host, items([single], calls, 20)))
        served = process.stats()["requests"] - before
        figures["single_control"] = {
            "model_calls": calls,
            "wall_s": round(wall, 2),
            "share_of_capacity": round(served / (wall * capacity), 3),
            "client_cpu_ms_per_call": round(1000 * cpu / calls, 2),
        }
        # 2. a 30-document corpus, 3 configs on one chunking and 1 on another
        with tempfile.TemporaryDirectory() as folder:
            corpus = Path(folder) / "corpus.jsonl"
            documents = tuple((f"r{i}", document(400, i)) for i in range(30))
            lines = [json.dumps({"id": i, "text": t}) + "\n" for i, t in documents]
            corpus.write_text("".join(lines))
            rag = [
                config(
                    "rag",
                    {"corpus": str(corpus)},
                    chunk_size=size,
                    chunk_overlap=20,
                    retrieve_k=k,
                    min_similarity=-1.0,
                    embed_model=EMBED,
                )
                for size, k in ((100, 3), (100, 5), (100, 8), (200, 3))
            ]
            before = process.stats()
            asyncio.run(sweep(host, items(rag, 4, 50)))
            after = process.stats()
        chunks = sum(
            len(corpus_chunks(documents, c.params.chunk_size, 20, "tokens"))
            for c in rag
            if c.params.retrieve_k == 3
        )  # one config per chunking
        questions = len(rag) * 4  # each case's question, embedded per config
        figures["rag_corpus"] = {
            "configs": 4,
            "chunkings": 2,
            "corpus_chunks_over_both_chunkings": chunks,
            "embed_requests": after["embed_requests"] - before["embed_requests"],
            "texts_embedded_minus_questions": after["texts_embedded"]
            - before["texts_embedded"]
            - questions,
        }
        # 3. wall time on the same 2 documents (2 cases on 4 slots: 2 slots free)
        sections = {f"s{i}": f"Section {i} of the report on:\n{{document}}" for i in range(4)}
        walls = {}
        for label, cfg in (
            (
                "map_reduce_parallel",
                config("map_reduce", {"mode": "parallel"}, chunk_size=60, chunk_overlap=10),
            ),
            (
                "map_reduce_refine",
                config("map_reduce", {"mode": "refine"}, chunk_size=60, chunk_overlap=10),
            ),
            ("sections_parallel", config("sections", {"sections": sections}, parallel=True)),
            ("sections_sequential", config("sections", {"sections": sections}, parallel=False)),
        ):
            wall, _cpu, calls, _peak = asyncio.run(sweep(host, items([cfg], 2, 300)))
            walls[label] = {"wall_s": round(wall, 2), "calls": calls}
        figures["same_documents"] = walls
    finally:
        process.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
