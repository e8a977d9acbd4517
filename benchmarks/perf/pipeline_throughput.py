"""Pipelines against one stand-in Ollama host in its own process (4 slots, 200 ms per
request by default).

Throughput scenarios run the real ``evaluate`` flow (on the Prefect API server `evalflow
run` starts, ``flows.run_control.prefect_api``: Prefect's own ephemeral server made
every Prefect client parse certifi's whole bundle, ~85 ms of blocked event loop each under
load, 26 per scenario; the host's
Prefect concurrency limit, ``HostSlots`` + ``PoolSpareSlots`` for a pipeline's parallel
calls, SQLite results); per scenario, capacity being slots / latency:

- ``phase_share``: requests the host served / (generation phase × capacity): the whole
  phase, its start (slot writes, the first task run) and end (the last writes) included;
- ``busy_share``: the same over the host's busy span (its first request's start to its
  last one's end), and ``outside_busy_s``: the phase's seconds outside that span;
- ``max_open`` vs ``slots``: the most requests the host had open at once (never more);
- ``cpu_ms_per_call``: the generation phase's process CPU / model calls;
- ``case_wall_s``: mean wall time of a case (table ``case_runs``).

Scenarios: ``one_case``: map_reduce over one document of 200 chunks; ``many_cases``:
map_reduce over ``--cases`` documents (6) of 50 chunks; ``sections_parallel`` and
``sections_sequential``: 5 sections + an assembly over ``--section-cases`` documents (24;
it was 6, the ``--cases``: 36 calls, 1.8 s of work, whose fixed ends, the phase's start
and the last case's assembly running alone behind its sections, held the share near
0.8-0.85 however the calls were placed; 24 measure the steady state);
``single_cases``: 200 one-call cases through the flow; ``single_control``: a plain
``slots``-way httpx client sending ``--control-calls`` requests (200), what the machine's
load leaves of the host's capacity (each scenario's ``vs_control`` is its phase share over
the control's from the same repeat: the machine is shared); ``wire_control``: the same
calls streamed as evalflow's Ollama client streams them, on its transport
(``evaluation/backends/_wire.py``): the bar for a 64-slot host, where plain httpx is
itself short of CPU (``vs_wire``). The host: ``--standin fast`` (the default,
``tests.support.standin_fast``, ~0.2 ms of CPU an answer) or ``asgi`` (the uvicorn
stand-in the figures before 2026-11-26 used). ``rag_corpus`` (in-process, no Prefect)
checks that a corpus is embedded once per chunking. ``--repeat N`` runs the scenarios N
times, interleaved, and prints each figure's runs. ``--timeline`` prints, per flow
scenario, where the host's idle slot-seconds went (``_pipeline_timeline.py``: the
phase's start and end, calls waiting while a slot was free, a call's client side,
chunk tasks starting, stage boundaries) and each slot's use over time.

    .venv/bin/python benchmarks/perf/pipeline_throughput.py
    .venv/bin/python benchmarks/perf/pipeline_throughput.py --repeat 3 \
        --scenario single_control --scenario one_case --scenario many_cases
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
_HOME = Path(tempfile.mkdtemp(prefix="evalflow-pipeline-bench-"))
os.environ.setdefault("PREFECT_HOME", str(_HOME / "prefect"))
os.environ.setdefault("EVALFLOW_HOME", str(_HOME / "evalflow"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import httpx  # noqa: E402
import yaml  # noqa: E402

from evaluation.backends import OllamaBackend  # noqa: E402
from evaluation.backends._http import shared_tls_context  # noqa: E402
from evaluation.backends._wire import WireTransport  # noqa: E402
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
from flows.run_control import prefect_api  # noqa: E402
from tests.support.standin_process import StandInProcess  # noqa: E402

MODEL, EMBED = "bench:8b", "nomic-embed-text"
WORDS = ["revenue", "margin", "dividend", "auditor", "board", "outlook", "risk", "growth"]
SUITE = Suite("bench", "1", "qa", ("contains",), ())


class LocalSlots:
    """The host's slots in this process, one per lane (a call takes one, waiting)."""

    def __init__(self, host: HostSpec) -> None:
        self.host, self.held = host, 0
        self._freed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._freed:
            await self._freed.wait_for(lambda: self.held < self.host.slots)
            self.held += 1
        try:
            yield
        finally:
            async with self._freed:
                self.held -= 1
                self._freed.notify_all()


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


async def sweep(host: HostSpec, work: list[WorkItem]) -> None:
    """Run ``work`` in process (no Prefect, no spare slots)."""
    backend = OllamaBackend(host)
    slots = LocalSlots(host)
    shared = SharedCalls({host.name: backend})

    async def sink(records) -> None:
        return None

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

    try:
        report = await dispatch(work, [host], run)
    finally:
        await backend.aclose()
    assert report.failed == 0, report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAP_REDUCE = {"name": "map_reduce", "mode": "parallel"}
SECTIONS = {
    "name": "sections",
    "sections": {
        name: f"Write the {name} section.\n\nEarlier:\n{{previous}}\n\n{{document}}"
        for name in ("overview", "results", "people", "outlook", "dividend")
    },
    "assembly_prompt": "Join these sections:\n\n{sections}",
}
CHUNK = 20  # words per map chunk


def flow_scenarios(
    cases: int, section_cases: int
) -> dict[str, tuple[int, int, dict[str, Any] | None, dict]]:
    """name -> (documents, words per document, pipeline block, grid)."""
    chunked = {"chunk_size": [CHUNK], "chunk_overlap": [0]}
    return {
        "one_case": (1, 200 * CHUNK, MAP_REDUCE, chunked),
        "many_cases": (cases, 50 * CHUNK, MAP_REDUCE, chunked),
        "sections_parallel": (section_cases, 300, SECTIONS, {"parallel": [True]}),
        "sections_sequential": (section_cases, 300, SECTIONS, {"parallel": [False]}),
        "single_cases": (200, 20, None, {}),
    }


def write_suite(folder: Path, documents: int, words: int) -> Path:
    lines = [
        json.dumps(
            {
                "id": f"d{i}",
                "input": "Summarise.",
                "references": ["x"],
                "metadata": {"document": document(words, i)},
            }
        )
        for i in range(documents)
    ]
    path = folder / "bench.jsonl"
    path.write_text("\n".join(lines) + "\n")
    meta = {"name": "bench", "version": "1", "task_type": "qa", "default_metrics": ["contains"]}
    (folder / "bench.suite.yaml").write_text(yaml.safe_dump(meta))
    return path


def run_flow(
    process: StandInProcess,
    host: HostSpec,
    scenario: tuple,
    latency_s: float,
    timeline: bool = False,
    workers: int | None = None,
):
    """One scenario through the ``evaluate`` flow; its figures (``timeline``: and where
    the host's idle slot-seconds went, printed; ``workers``: its lane workers, None:
    ``evaluate``'s default)."""
    from flows.evaluate import evaluate

    documents, words, pipeline, grid = scenario
    folder = Path(tempfile.mkdtemp(prefix="evalflow-pipeline-flow-", dir=_HOME))
    spec = {
        "name": "pipeline-bench",
        "suite": str(write_suite(folder, documents, words)),
        "models": [MODEL],
        **({"pipeline": pipeline} if pipeline else {}),
        "grid": {"num_predict": [16], **grid},
        "metrics": ["contains"],
        "hosts": [{"name": host.name, "url": host.url, "slots": host.slots}],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    database = folder / "results.db"
    process.reset_stats()
    lanes = {} if workers is None else {"workers": workers}
    run = evaluate(spec_path=str(path), database=f"sqlite:///{database}", **lanes)
    if timeline:
        from _pipeline_timeline import Timeline

        recorded = Timeline()
        with recorded.record():
            summary = asyncio.run(run)
        spans = process.stats(spans=True)["spans"]
        print(recorded.report(spans, host.slots, summary["generation_s"]), flush=True)
    else:
        summary = asyncio.run(run)
    with sqlite3.connect(database) as db:
        (case_wall,) = db.execute("SELECT avg(wall_s) FROM case_runs").fetchone()
    return {
        "cases": documents,
        **host_figures(process, host, latency_s, summary["generation_s"]),
        "cpu_ms_per_call": round(
            1000 * summary["generation_cpu_s"] / process.stats()["requests"], 2
        ),
        "case_wall_s": round(case_wall, 3),
        "failed": summary["failed"],
    }


def host_figures(
    process: StandInProcess, host: HostSpec, latency_s: float, seconds: float
) -> dict[str, Any]:
    """What the host saw over a phase of ``seconds``: its share of capacity over the
    phase and over its busy span, and the most requests open at once."""
    stats = process.stats()
    served = stats["requests"] + stats["embed_requests"]
    capacity = host.slots / latency_s
    busy = stats["last_ended"] - stats["first_started"]
    return {
        "model_calls": served,
        "phase_s": round(seconds, 3),
        "phase_share": round(served / (seconds * capacity), 3),
        "busy_s": round(busy, 3),
        "busy_share": round(served / (busy * capacity), 3),
        "outside_busy_s": round(seconds - busy, 3),
        "max_open": stats["max_in_flight"],
        "slots": host.slots,
    }


def plain_control(
    process: StandInProcess, host: HostSpec, latency_s: float, calls: int, *, wire: bool = False
) -> dict[str, Any]:
    """``calls`` one-call requests from ``slots`` httpx workers, nothing else: the share of
    the host's capacity that the machine's load leaves to any client. ``wire``: streamed,
    on evalflow's own transport (``WireTransport``) under the httpx client."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Summarise."}],
        "stream": wire,
        "options": {"num_predict": 16},
    }
    todo = iter(range(calls))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in todo:
            if not wire:
                (await client.post(host.url + "/api/chat", json=body)).raise_for_status()
                continue
            async with client.stream("POST", host.url + "/api/chat", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.strip():
                        json.loads(line)

    async def run() -> None:
        limits = httpx.Limits(max_connections=host.slots, max_keepalive_connections=host.slots)
        transport = WireTransport(limits, shared_tls_context()) if wire else None
        async with httpx.AsyncClient(timeout=60, limits=limits, transport=transport) as client:
            await asyncio.gather(*(worker(client) for _ in range(host.slots)))

    process.reset_stats()
    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    figures = host_figures(process, host, latency_s, seconds)
    return figures | {"cpu_ms_per_call": round(1000 * cpu / figures["model_calls"], 2)}


def rag_corpus(host: HostSpec, process: StandInProcess) -> dict[str, Any]:
    """A 30-document corpus, 3 configs on one chunking and 1 on another: each chunk
    embedded once per chunking."""
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
    return {
        "configs": 4,
        "chunkings": 2,
        "corpus_chunks_over_both_chunkings": chunks,
        "embed_requests": after["embed_requests"] - before["embed_requests"],
        "texts_embedded_minus_questions": after["texts_embedded"]
        - before["texts_embedded"]
        - questions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--cases", type=int, default=6, help="documents for many_cases")
    parser.add_argument(
        "--section-cases", type=int, default=24, help="documents for the sections scenarios"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of every scenario")
    parser.add_argument("--control-calls", type=int, default=200, help="calls of a control")
    parser.add_argument("--standin", choices=("fast", "asgi"), default="fast")
    choices = ["single_control", "wire_control", *flow_scenarios(1, 1), "rag_corpus"]
    parser.add_argument("--scenario", action="append", choices=choices)
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print where each flow scenario's idle slot-seconds went (_pipeline_timeline.py)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="the flow scenarios' lane workers, as `run --workers N` (default: evaluate's, "
        "one process); with N > 1 cpu_ms_per_call is the run's own process only",
    )
    args = parser.parse_args()
    port = free_port()
    process = StandInProcess(
        port,
        slots=args.slots,
        latency_ms=args.latency_ms,
        models=[MODEL, EMBED],
        fast=args.standin == "fast",
    ).start()
    host = HostSpec("bench", process.url, args.slots)
    latency_s = args.latency_ms / 1000
    runs: dict[str, list[dict[str, Any]]] = {}
    scenarios = flow_scenarios(args.cases, args.section_cases)
    try:
        with prefect_api():  # the API server `evalflow run` uses
            for repeat in range(args.repeat):
                controls: dict[str, dict[str, Any]] = {}
                for name in args.scenario or choices:
                    if name == "rag_corpus":
                        figures = rag_corpus(host, process)
                    elif name in ("single_control", "wire_control"):
                        wire = name == "wire_control"
                        figures = plain_control(
                            process, host, latency_s, args.control_calls, wire=wire
                        )
                        controls["vs_wire" if wire else "vs_control"] = figures
                    else:
                        figures = run_flow(
                            process, host, scenarios[name], latency_s, args.timeline, args.workers
                        )
                    for key, control in controls.items():
                        if "phase_share" in figures:
                            share = figures["phase_share"] / control["phase_share"]
                            figures[key] = round(share, 3)
                    figures["load_1min"] = round(os.getloadavg()[0], 1)
                    runs.setdefault(name, []).append(figures)
                    print(f"run {repeat + 1}", name, json.dumps(figures), flush=True)
    finally:
        process.stop()
    print(f"slots {args.slots}, {args.latency_ms:g} ms per request; each figure over the runs:")
    for name, figures in runs.items():
        shown = {
            key: [f[key] for f in figures]
            for key in (
                "phase_share",
                "busy_share",
                "outside_busy_s",
                "vs_control",
                "vs_wire",
                "max_open",
                "cpu_ms_per_call",
                "case_wall_s",
                "load_1min",
            )
            if key in figures[0]
        }
        print(name, json.dumps(shown))


if __name__ == "__main__":
    main()
