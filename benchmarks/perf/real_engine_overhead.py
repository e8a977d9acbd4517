"""How much time does evalflow add to a real engine's own time?

Serves the two real models of the dev extra with llama.cpp (llama-cpp-python's server,
tests/support/real_models.py), runs a real sweep on them as a user does (`evalflow run`
in a subprocess, fresh EVALFLOW_HOME), and compares:

    engine       the sum of llama.cpp's own time per request: the ``total time`` of each
                 ``llama_perf_context_print`` line in the server's log (one per request)
    generation   the sweep's generation span: from the first request sent to the last
                 answer stored (generations.created_at - latency_s .. created_at)
    run          the whole `evalflow run`, process start to exit (imports, the embedded
                 Prefect server, scoring, statistics, report)

and prints generation / engine and run / engine. One request at a time (slots 1), so the
engine's times add up to the time it was busy. Run twice: qa-short with contains and
exact_match, and classify-intent with accuracy and macro_f1.

    .venv/bin/python benchmarks/perf/real_engine_overhead.py [--cases 12] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.real_models import CHAT_MODELS, serving  # noqa: E402

_TOTAL = re.compile(r"llama_perf_context_print:\s+total time =\s+([\d.]+) ms")
SWEEPS = {
    "qa-short": ["contains", "exact_match"],
    "classify-intent": ["accuracy", "macro_f1"],
}


def engine_seconds(log: Path, start: int) -> tuple[float, int]:
    """Sum of the engine's per-request total times logged after byte ``start``."""
    text = log.read_text(errors="replace")[start:]
    times = [float(m) / 1000 for m in _TOTAL.findall(text)]
    return sum(times), len(times)


def generation_span(db: Path) -> float:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT created_at, latency_s FROM generations WHERE status = 'ok'"
        ).fetchall()
    ends = [datetime.fromisoformat(str(c)).timestamp() for c, _ in rows]
    starts = [e - (latency or 0) for e, (_, latency) in zip(ends, rows, strict=True)]
    return max(ends) - min(starts)


def run_sweep(server, suite: str, metrics: list[str], cases: int, folder: Path) -> dict:
    spec = {
        "name": f"overhead-{suite}",
        "suite": str(REPO / "benchmarks" / "suites" / f"{suite}.jsonl"),
        "models": list(CHAT_MODELS),
        "grid": {"temperature": [0.0], "num_predict": [16]},
        "metrics": metrics,
        "hosts": [server.host(name=f"llama-cpp-{os.getpid()}")],  # its own slot limit
    }
    path = folder / f"{suite}.yaml"
    path.write_text(yaml.safe_dump(spec))
    db = folder / f"{suite}.db"
    env = os.environ | {"EVALFLOW_HOME": str(folder / f"home-{suite}")}
    command = [str(REPO / ".venv" / "bin" / "evalflow"), "--database", f"sqlite:///{db}"]
    command += ["run", str(path), "--limit", str(cases), "--quiet"]
    mark = server.log.stat().st_size
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    run_s = time.perf_counter() - began
    if "generated" not in done.stdout:  # failed generations exit 1 but still count
        raise SystemExit(f"evalflow run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    engine, requests = engine_seconds(server.log, mark)
    return {
        "suite": suite,
        "metrics": ",".join(metrics),
        "requests": requests,
        "engine_s": engine,
        "generation_s": generation_span(db),
        "run_s": run_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12, help="cases per suite (default 12)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        folder = Path(tmp)
        with serving(folder / "server", threads=args.threads) as server:
            results = [
                run_sweep(server, suite, metrics, args.cases, folder)
                for suite, metrics in SWEEPS.items()
            ]
    print(
        f"{'suite':<16} {'metrics':<22} {'req':>4} {'engine s':>9} {'gen s':>8} "
        f"{'run s':>8} {'gen/engine':>10} {'run/engine':>10}"
    )
    for r in results:
        print(
            f"{r['suite']:<16} {r['metrics']:<22} {r['requests']:>4} {r['engine_s']:>9.1f} "
            f"{r['generation_s']:>8.1f} {r['run_s']:>8.1f} "
            f"{r['generation_s'] / r['engine_s']:>10.3f} {r['run_s'] / r['engine_s']:>10.3f}"
        )


if __name__ == "__main__":
    main()
