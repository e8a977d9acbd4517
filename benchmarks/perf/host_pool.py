"""The host pool on two stand-in Ollama hosts (separate processes; 4 and 2 slots, 200 ms
per request by default): how much of their combined capacity a sweep uses, how many
model loads model ordering saves, and what stopping one host half-way does to wall time.

Scenarios (all by default, or pick with --scenario):

- ``throughput``: ``evaluation.run._dispatch.dispatch`` + ``evaluation.run._generate.run_chunk``
  with no concurrency slot (the pure pool): generations / (wall × capacity), capacity =
  Σ slots / latency. ``--shuffle`` dispatches a shuffled item list instead.
- ``ordering``: model loads (each host keeps one model resident, a load costs
  ``--load-ms``) for dispatch in sweep order, dispatch on a shuffled list, and a naive
  pool without model ordering (every lane takes the next shuffled item).
- ``failover``: the 2-slot host is stopped once half the generations are stored; wall
  time against the ideal with and without the loss.
- ``flow``: the same sweep through the real ``evaluate`` flow (embedded Prefect API,
  Prefect concurrency limits per host, SQLite results), generation phase only.

    .venv/bin/python benchmarks/perf/host_pool.py
    .venv/bin/python benchmarks/perf/host_pool.py --scenario ordering --load-ms 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
_HOME = Path(tempfile.mkdtemp(prefix="evalflow-host-pool-"))
os.environ.setdefault("PREFECT_HOME", str(_HOME / "prefect"))
os.environ.setdefault("EVALFLOW_HOME", str(_HOME / "evalflow"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import yaml  # noqa: E402

from evaluation.backends import OllamaBackend  # noqa: E402
from evaluation.backends.retry import RetryPolicy  # noqa: E402
from evaluation.run._dispatch import dispatch  # noqa: E402
from evaluation.run._generate import ChunkOutcome, run_chunk  # noqa: E402
from evaluation.run._work import WorkItem  # noqa: E402
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate  # noqa: E402
from evaluation.suites import Suite, load_suite  # noqa: E402
from tests.support.standin_process import StandInProcess  # noqa: E402

SUITE_PATH = REPO / "benchmarks/suites/qa-short.jsonl"
MODELS = ("bench-a:1b", "bench-b:1b")
TEMPERATURES = (0.0, 0.5, 1.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def work(suite: Suite, samples: int) -> list[WorkItem]:
    """Config-major in sweep order: model, then temperature, then case and sample."""
    configs = [
        Config(m, GenerationParams(temperature=t, num_predict=16), PromptTemplate("default"))
        for m in MODELS
        for t in TEMPERATURES
    ]
    return [
        WorkItem(c, case, suite.name, s)
        for c in configs
        for case in suite.cases
        for s in range(samples)
    ]


class Pool:
    """Two stand-in host processes and a backend for each."""

    def __init__(self, slots: Sequence[int], latency_ms: float, load_ms: float = 0.0) -> None:
        self.latency_s = latency_ms / 1000
        self.processes = {
            f"gpu-{chr(97 + i)}": StandInProcess(
                free_port(), slots=n, latency_ms=latency_ms, models=MODELS, load_ms=load_ms
            )
            for i, n in enumerate(slots)
        }
        self.hosts = [
            HostSpec(name, p.url, slots=n)
            for (name, p), n in zip(self.processes.items(), slots, strict=True)
        ]

    @property
    def capacity(self) -> float:
        """Generations per second the hosts can serve together."""
        return sum(h.slots for h in self.hosts) / self.latency_s

    def __enter__(self) -> Pool:
        for process in self.processes.values():
            process.start()
        self.backends = {h.name: OllamaBackend(h, timeout_s=30.0) for h in self.hosts}
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes.values():
            process.stop()

    async def close(self) -> None:
        await asyncio.gather(*(b.aclose() for b in self.backends.values()))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: p.stats() for name, p in self.processes.items() if p.process is not None}


async def run_dispatch(pool: Pool, suite: Suite, items: list[WorkItem], *, stop_at=None):
    """Dispatch ``items``; with ``stop_at`` = (host, n), stop that host once n are stored."""
    stored, stopping = 0, []

    async def sink(records) -> None:
        nonlocal stored
        stored += len(records)
        if stop_at and stored >= stop_at[1] and not stopping:
            stopping.append(asyncio.create_task(asyncio.to_thread(pool.processes[stop_at[0]].stop)))

    async def run(host: HostSpec, chunk: list[WorkItem]) -> ChunkOutcome:
        return await run_chunk(
            pool.backends[host.name], chunk, suite=suite, policy=RetryPolicy(), sink=sink
        )

    started = time.perf_counter()
    report = await dispatch(items, pool.hosts, run)
    wall = time.perf_counter() - started
    await asyncio.gather(*stopping)
    return report, wall


async def run_fifo(pool: Pool, suite: Suite, items: list[WorkItem]) -> float:
    """A pool without model ordering: each lane takes the next item, whatever its model."""
    queue: asyncio.Queue[WorkItem] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def sink(records) -> None:
        return None

    async def lane(host: HostSpec) -> None:
        while not queue.empty():
            item = queue.get_nowait()
            await run_chunk(
                pool.backends[host.name], [item], suite=suite, policy=RetryPolicy(), sink=sink
            )

    started = time.perf_counter()
    await asyncio.gather(*(lane(h) for h in pool.hosts for _ in range(h.slots)))
    return time.perf_counter() - started


def loads(stats: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {name: s["model_loads"] for name, s in stats.items()}


def scenario_throughput(args, suite, items) -> dict[str, Any]:
    order = random.Random(1).sample(items, len(items)) if args.shuffle else items
    with Pool(args.slots, args.latency_ms) as pool:

        async def go():
            try:
                return await run_dispatch(pool, suite, order)
            finally:
                await pool.close()

        report, wall = asyncio.run(go())
        stats = pool.stats()
    return {
        "generations": report.generated,
        "failed": report.failed,
        "wall_s": round(wall, 2),
        "ideal_s": round(len(items) / pool.capacity, 2),
        "fraction_of_capacity": round(report.generated / (wall * pool.capacity), 3),
        "max_in_flight": {n: s["max_in_flight"] for n, s in stats.items()},
        "items_per_host": report.items_per_host,
        "chunks": report.chunks,
        "shuffled": args.shuffle,
    }


def scenario_ordering(args, suite, items) -> dict[str, Any]:
    shuffled = random.Random(2).sample(items, len(items))
    out: dict[str, Any] = {"load_ms": args.load_ms}
    for label, order, naive in (
        ("dispatch_sweep_order", items, False),
        ("dispatch_shuffled_input", shuffled, False),
        ("naive_pool_no_ordering", shuffled, True),
    ):
        with Pool(args.slots, args.latency_ms, load_ms=args.load_ms) as pool:

            async def go(order=order, naive=naive, pool=pool):
                try:
                    if naive:
                        return await run_fifo(pool, suite, order)
                    return (await run_dispatch(pool, suite, order))[1]
                finally:
                    await pool.close()

            wall = asyncio.run(go())
            stats = pool.stats()
        out[label] = {
            "model_loads": loads(stats),
            "wall_s": round(wall, 2),
            "fraction_of_capacity": round(len(items) / (wall * pool.capacity), 3),
        }
    return out


def scenario_failover(args, suite, items) -> dict[str, Any]:
    with Pool(args.slots, args.latency_ms) as pool:
        small = min(pool.hosts, key=lambda h: h.slots)
        rest = pool.capacity - small.slots / pool.latency_s
        half = len(items) // 2

        async def go():
            try:
                return await run_dispatch(pool, suite, items, stop_at=(small.name, half))
            finally:
                await pool.close()

        report, wall = asyncio.run(go())
    ideal_all = len(items) / pool.capacity
    ideal_loss = half / pool.capacity + (len(items) - half) / rest
    return {
        "stopped": small.name,
        "after_stored": half,
        "generated": report.generated,
        "failed": report.failed,
        "unservable": len(report.unservable),
        "hosts_down": report.hosts_down,
        "items_per_host": report.items_per_host,
        "wall_s": round(wall, 2),
        "ideal_no_loss_s": round(ideal_all, 2),
        "ideal_with_loss_s": round(ideal_loss, 2),
        "overhead_vs_ideal_with_loss_s": round(wall - ideal_loss, 2),
    }


def scenario_flow(args, suite, items) -> dict[str, Any]:
    from flows.evaluate import evaluate

    with Pool(args.slots, args.latency_ms) as pool:
        folder = Path(tempfile.mkdtemp(prefix="evalflow-host-pool-flow-"))
        spec = {
            "name": "host-pool-bench",
            "suite": str(SUITE_PATH),
            "models": list(MODELS),
            "grid": {"temperature": list(TEMPERATURES), "num_predict": [16]},
            "samples_per_case": args.samples,
            "metrics": ["exact_match"],
            "hosts": [{"name": h.name, "url": h.url, "slots": h.slots} for h in pool.hosts],
        }
        path = folder / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        database = f"sqlite:///{folder / 'results.db'}"
        started = time.perf_counter()
        summary = asyncio.run(evaluate(spec_path=str(path), database=database))
        total = time.perf_counter() - started
        stats = pool.stats()
    generation_s = summary["generation_s"]
    return {
        "generations": summary["generated"],
        "failed": summary["failed"],
        "generation_s": generation_s,
        "flow_total_s": round(total, 2),
        "ideal_s": round(len(items) / pool.capacity, 2),
        "fraction_of_capacity": round(summary["generated"] / (generation_s * pool.capacity), 3),
        "max_in_flight": {n: s["max_in_flight"] for n, s in stats.items()},
        "model_loads": loads(stats),
        "model_switches": summary["model_switches"],
    }


SCENARIOS = {
    "throughput": scenario_throughput,
    "ordering": scenario_ordering,
    "failover": scenario_failover,
    "flow": scenario_flow,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--slots", default="4,2", help="slots per host, comma-separated")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--load-ms", type=float, default=1000.0, help="ordering scenario")
    parser.add_argument("--samples", type=int, default=3, help="samples per case")
    parser.add_argument("--shuffle", action="store_true", help="throughput on shuffled items")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.slots = [int(s) for s in args.slots.split(",")]
    suite = load_suite(SUITE_PATH)
    items = work(suite, args.samples)
    print(
        f"{len(items)} generations ({len(MODELS)} models x {len(TEMPERATURES)} temperatures x "
        f"{len(suite.cases)} cases x {args.samples} samples); hosts {args.slots} slots, "
        f"{args.latency_ms:g} ms per request"
    )
    results = {}
    for name in args.scenario or list(SCENARIOS):
        results[name] = SCENARIOS[name](args, suite, items)
        print(f"\n[{name}]\n{json.dumps(results[name], indent=2)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
