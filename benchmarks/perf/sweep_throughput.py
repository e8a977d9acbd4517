"""How fast does a sweep run through the real `evaluate` flow?

Starts a stand-in Ollama (its own process: 4 slots, 200 ms per request by default), runs
a sweep of N generations on the embedded Prefect server, and prints wall time against
the ideal (N x latency / slots), the most requests the host saw open at once (it must
not exceed the slots), this process's CPU per generation, peak memory, and whether the
output carried errors or tracebacks.

    .venv/bin/python benchmarks/perf/sweep_throughput.py --generations 800
    .venv/bin/python benchmarks/perf/sweep_throughput.py --generations 800 --chunk-size 1
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = 8  # temperature grid below


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_suite(folder: Path, cases: int) -> Path:
    lines = [
        json.dumps(
            {
                "id": f"q{i}",
                "input": f"Question {i}: what is {i} plus one?",
                "references": [str(i + 1)],
            }
        )
        for i in range(cases)
    ]
    (folder / "bench.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "bench.suite.yaml").write_text(
        "name: bench\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    return folder / "bench.jsonl"


def start_standin(port: int, slots: int, latency_ms: float) -> subprocess.Popen:
    """The stand-in with its counters at ``GET /_stats`` (tests.support.standin_process)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.standin_process",
            "--port",
            str(port),
            "--slots",
            str(slots),
            "--latency-ms",
            str(latency_ms),
            "--models",
            "bench:1b",
        ],
        cwd=REPO,
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("stand-in did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=800)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--chunk-size", type=int, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="evalflow-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    cases = -(-args.generations // CONFIGS)
    suite = write_suite(work, cases)
    port = free_port()
    standin = start_standin(port, args.slots, args.latency_ms)
    spec = work / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "suite": str(suite),
                "models": ["bench:1b"],
                "grid": {
                    "temperature": [round(0.1 * i, 1) for i in range(CONFIGS)],
                    "num_predict": [16],
                },
                "hosts": [
                    {"name": "bench", "url": f"http://127.0.0.1:{port}", "slots": args.slots}
                ],
            }
        )
    )
    sys.path.insert(0, str(REPO))
    from flows.evaluate import evaluate

    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    logging.getLogger().addHandler(handler)
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with redirect_stderr(captured):
            summary = asyncio.run(
                evaluate(
                    spec_path=str(spec),
                    database=f"sqlite:///{work / 'results.db'}",
                    chunk_size=args.chunk_size,
                )
            )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        peak = httpx.get(f"http://127.0.0.1:{port}/_stats", timeout=5).json()["max_in_flight"]
    finally:
        standin.terminate()
        standin.wait()
    n = summary["generated"]
    ideal = n * args.latency_ms / 1000 / args.slots
    text = captured.getvalue()
    gen_phase = summary["generation_s"]
    print(f"generations       {n} (failed {summary['failed']})")
    print(f"chunk size        {args.chunk_size or 'default'}")
    print(f"wall, whole flow  {wall:.1f} s   (ideal generation time {ideal:.1f} s)")
    print(f"wall, generation  {gen_phase:.1f} s = {gen_phase / ideal:.3f} x ideal")
    print(f"peak open         {peak} requests at the host ({args.slots} slots)")
    gen_cpu = summary["generation_cpu_s"]
    print(
        f"client CPU        {gen_cpu:.1f} s while generating = "
        f"{1000 * gen_cpu / max(n, 1):.2f} ms per generation ({cpu:.1f} s whole flow)"
    )
    print(f"peak RSS          {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"errors in output  {text.count('ERROR')}, tracebacks {text.count('Traceback')}")


if __name__ == "__main__":
    main()
