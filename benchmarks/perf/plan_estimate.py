"""How close `evalflow plan`'s duration estimate comes to the run, and what plan costs.

Two in-process stand-in Ollama hosts (gpu-a: 4 slots at --latency-ms, gpu-b: 2 slots at
twice that). A first sweep (one config) runs through the real `evaluate` flow and leaves
its measurements; `plan` then estimates a second sweep on the same hosts (the measured
config and new temperatures of the same model), which then runs. ``--pipeline``: the
second sweep is one map_reduce config over the first ``--cases`` of report-qa (chunks of
2000 words: a call per chunk and the reduce) on gpu-a alone, never measured itself, so
its figure is the model's single calls times its calls per case. Printed: the estimate,
each host's share, estimated and in the run (generations, and when its last one was
stored, counted from the run's first), the run's generation time and their ratio, and
the wall time of the `evalflow plan` executable on that database (median of three).

    .venv/bin/python benchmarks/perf/plan_estimate.py [--latency-ms 200] [--configs 8]
    .venv/bin/python benchmarks/perf/plan_estimate.py --pipeline [--cases 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
REPORTS = REPO / "benchmarks/suites/report-qa.jsonl"


def spec(path: Path, hosts: list[dict], temperatures: list[float]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "suite": str(SUITE),
                "models": ["llama3.2:3b"],
                "grid": {"temperature": temperatures, "num_predict": [16]},
                "hosts": hosts,
            }
        )
    )
    return path


def map_reduce_spec(path: Path, hosts: list[dict]) -> Path:
    """One map_reduce config of the measured model over report-qa, chunks of 2000 words."""
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "suite": str(REPORTS),
                "models": ["llama3.2:3b"],
                "pipeline": {"name": "map_reduce", "mode": "parallel", "unit": "tokens"},
                "grid": {
                    "temperature": [0.0],
                    "num_predict": [16],
                    "chunk_size": [2000],
                    "chunk_overlap": [200],
                    "num_ctx": [8192],
                },
                "hosts": hosts,
            }
        )
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--pipeline", action="store_true", help="a map_reduce sweep second")
    parser.add_argument("--cases", type=int, default=10, help="of report-qa, with --pipeline")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plan-estimate-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    os.environ.setdefault("EVALFLOW_HOME", str(work / "evalflow"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    database = f"sqlite:///{work / 'results.db'}"

    from evaluation.run._estimate import estimate
    from evaluation.run._rate import format_duration
    from evaluation.run._sweep import prepare_sweep
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.throughput import measured_throughput
    from flows.evaluate import evaluate
    from tests.support.standin_ollama import StandInConfig, running_standin

    fast = StandInConfig(models=("llama3.2:3b",), slots=4, latency_ms=args.latency_ms)
    slow = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=2 * args.latency_ms)
    with running_standin(fast) as a, running_standin(slow) as b:
        hosts = [
            {"name": "gpu-a", "url": a.url, "slots": 4},
            {"name": "gpu-b", "url": b.url, "slots": 2},
        ]
        if args.pipeline:  # one host: the first sweep's 36 generations measure it surely
            hosts = hosts[:1]
        asyncio.run(evaluate(str(spec(work / "earlier.yaml", hosts, [0.0])), database=database))
        temperatures = [round(0.1 * i, 1) for i in range(args.configs)]
        later = spec(work / "later.yaml", hosts, temperatures)
        limit = None
        if args.pipeline:
            later, limit = map_reduce_spec(work / "later.yaml", hosts), args.cases
        sweep = prepare_sweep(later)
        items = sweep.work_items()
        if limit is not None:  # the run's --limit: the suite's first cases
            first = {case.id for case in sweep.suite.cases[:limit]}
            items = [item for item in items if item.case.id in first]
        engine = make_engine(database, create=False)
        with session_scope(engine) as session:
            measured = measured_throughput(session, [h["name"] for h in hosts])
        result = estimate(items, sweep.spec.hosts, measured)
        plan_s = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "flows.cli", "--database", database, "plan", str(later)]
                + (["--limit", str(limit)] if limit else []),
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            plan_s.append(time.perf_counter() - started)
        summary = asyncio.run(evaluate(str(later), database=database, limit=limit))
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT host, count(*), min(created_at), max(created_at) FROM generations "
                    "WHERE experiment_id = :e GROUP BY host"
                ),
                {"e": summary["experiment_id"]},
            ).all()

    actual = summary["generation_s"]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    what = "1 map_reduce config" if args.pipeline else f"{args.configs} configs"
    print(f"{len(items)} generations, {what}, on {', '.join(h['name'] for h in hosts)}")
    for (config, host), figure in result.figures.items():
        print(f"  {config} on {host}: {figure.seconds:.2f} s per generation ({figure.source})")
    first = min(datetime.fromisoformat(str(row[2])) for row in rows)
    ran = {row[0]: (row[1], datetime.fromisoformat(str(row[3])) - first) for row in rows}
    for host, (n, seconds) in result.per_host.items():
        n_run, last = ran.get(host, (0, timedelta()))
        print(
            f"  {host}: {n} generations, {seconds:.1f} s estimated; in the run {n_run}, "
            f"its last stored at {last.total_seconds():.1f} s"
        )
    print(
        f"estimate {result.seconds:.1f} s ({format_duration(result.seconds)}), run's "
        f"generation {actual:.1f} s: ratio {actual / result.seconds:.2f}"
    )
    print(f"evalflow plan with history: median {statistics.median(plan_s):.2f} s wall")


if __name__ == "__main__":
    main()
