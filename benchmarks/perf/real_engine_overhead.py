"""How much time does evalflow add to a real engine's own time?

Serves the two real models of the dev extra with llama.cpp (llama-cpp-python's server,
tests/support/real_models.py), runs a real sweep on them as a user does (`evalflow run`
in a subprocess, fresh EVALFLOW_HOME), and compares:

    engine       the sum of llama.cpp's own time per request: the ``total time`` of each
                 ``llama_perf_context_print`` line in the server's log (one per request)
    generation   the sweep's generation span: from the first request sent to the last
                 answer stored (generations.created_at - latency_s .. created_at)
    client       the sum of the requests' latencies as evalflow's client saw them (send to
                 last byte): the engine plus its server's own HTTP and Python layer
    run          the whole `evalflow run`, process start to exit (imports, the embedded
                 Prefect server, scoring, statistics, report); ``before`` is process start
                 to the first request, ``after`` the last answer to exit

and prints client / engine, generation / engine and run / engine. One request at a time
(slots 1), so the engine's times add up to the time it was busy, and generation − client
is the time evalflow spent between requests. Runs qa-short with contains and
exact_match, and classify-intent with accuracy and macro_f1; or, with ``--demo``,
benchmarks/sweeps/demo-real.yaml as a user runs it (72 generations).

    .venv/bin/python benchmarks/perf/real_engine_overhead.py [--cases 12] [--threads 2]
    .venv/bin/python benchmarks/perf/real_engine_overhead.py --demo --threads 1 \
        [--num-predict 128]
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
DEMO = REPO / "benchmarks" / "sweeps" / "demo-real.yaml"
SWEEPS = {
    "qa-short": ["contains", "exact_match"],
    "classify-intent": ["accuracy", "macro_f1"],
}


def engine_seconds(log: Path, start: int) -> tuple[float, int]:
    """Sum of the engine's per-request total times logged after byte ``start``."""
    text = log.read_text(errors="replace")[start:]
    times = [float(m) / 1000 for m in _TOTAL.findall(text)]
    return sum(times), len(times)


def generation_span(db: Path) -> tuple[float, float, float]:
    """The generation phase's first send and last answer (epoch s), and the sum of its
    requests' latencies as evalflow's client saw them (send to last byte). With one
    request at a time, span − sum is the time between requests: evalflow's own work
    between an answer and the next request."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT created_at, latency_s FROM generations WHERE status = 'ok'"
        ).fetchall()
    ends = [datetime.fromisoformat(str(c)).timestamp() for c, _ in rows]
    starts = [e - (latency or 0) for e, (_, latency) in zip(ends, rows, strict=True)]
    return min(starts), max(ends), sum(latency or 0 for _, latency in rows)


def sweep_spec(server, suite: str, metrics: list[str]) -> dict:
    return {
        "name": f"overhead-{suite}",
        "suite": str(REPO / "benchmarks" / "suites" / f"{suite}.jsonl"),
        "models": list(CHAT_MODELS),
        "grid": {"temperature": [0.0], "num_predict": [16]},
        "metrics": metrics,
        "hosts": [server.host(name=f"llama-cpp-{os.getpid()}")],  # its own slot limit
    }


def demo_spec(server) -> dict:
    """benchmarks/sweeps/demo-real.yaml as a user runs it, on the rig's server."""
    spec = yaml.safe_load(DEMO.read_text())
    spec["suite"] = str((DEMO.parent / spec["suite"]).resolve())
    spec["hosts"] = [server.host(name=f"llama-cpp-{os.getpid()}")]
    return spec


def run_sweep(server, spec: dict, cases: int | None, folder: Path, num_predict: int | None) -> dict:
    if num_predict is not None:
        spec["grid"]["num_predict"] = [num_predict]
    name = spec["name"]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    db = folder / f"{name}.db"
    env = os.environ | {"EVALFLOW_HOME": str(folder / f"home-{name}")}
    command = [str(REPO / ".venv" / "bin" / "evalflow"), "--database", f"sqlite:///{db}"]
    command += ["run", str(path), "--quiet"]
    command += [] if cases is None else ["--limit", str(cases)]
    mark = server.log.stat().st_size
    began, began_epoch = time.perf_counter(), time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    run_s = time.perf_counter() - began
    if "generated" not in done.stdout:  # failed generations exit 1 but still count
        raise SystemExit(f"evalflow run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    engine, requests = engine_seconds(server.log, mark)
    first_send, last_answer, client_s = generation_span(db)
    return {
        "suite": Path(spec["suite"]).stem,
        "metrics": ",".join(spec["metrics"]),
        "requests": requests,
        "engine_s": engine,
        "client_s": client_s,
        "generation_s": last_answer - first_send,
        "before_s": first_send - began_epoch,
        "after_s": began_epoch + run_s - last_answer,
        "run_s": run_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12, help="cases per suite (default 12)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--demo", action="store_true", help="run benchmarks/sweeps/demo-real.yaml, all cases"
    )
    parser.add_argument(
        "--num-predict", type=int, help="tokens per answer (default: the sweep's own)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        folder = Path(tmp)
        with serving(folder / "server", threads=args.threads) as server:
            if args.demo:
                results = [run_sweep(server, demo_spec(server), None, folder, args.num_predict)]
            else:
                results = [
                    run_sweep(
                        server,
                        sweep_spec(server, suite, metrics),
                        args.cases,
                        folder,
                        args.num_predict,
                    )
                    for suite, metrics in SWEEPS.items()
                ]
    print(
        f"{'suite':<16} {'metrics':<22} {'req':>4} {'engine s':>9} {'client s':>9} "
        f"{'gen s':>7} {'before s':>9} {'after s':>8} {'run s':>7} "
        f"{'client/eng':>10} {'gen/engine':>10} {'run/engine':>10}"
    )
    for r in results:
        print(
            f"{r['suite']:<16} {r['metrics']:<22} {r['requests']:>4} {r['engine_s']:>9.1f} "
            f"{r['client_s']:>9.1f} {r['generation_s']:>7.1f} {r['before_s']:>9.1f} "
            f"{r['after_s']:>8.1f} {r['run_s']:>7.1f} {r['client_s'] / r['engine_s']:>10.3f} "
            f"{r['generation_s'] / r['engine_s']:>10.3f} {r['run_s'] / r['engine_s']:>10.3f}"
        )


if __name__ == "__main__":
    main()
