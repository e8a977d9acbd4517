"""Start-up and exit of `evalflow run` on the embedded Prefect server: seconds from the
command's start to the flow's first log line ("Beginning flow run"), to its end, and
the whole wall time, for a tiny simulated sweep (1 config × 36 cases) on a fresh
PREFECT_HOME and results database each time. Several evalflow executables can be
compared, interleaved so that machine load hits them alike.

    .venv/bin/python benchmarks/perf/startup.py [--runs 3] [--evalflow PATH ...]

Prints one line per run and the medians; the load average comes first and last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPEC = """name: startup
suite: {suite}
models: [sim-small:1b]
grid:
  temperature: [0.0]
  num_predict: [32]
hosts:
  - {{name: sim, url: "simulated://local", slots: 4, kind: simulated}}
"""


def one_run(evalflow: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="evalflow-startup-"))
    spec = home / "spec.yaml"
    spec.write_text(SPEC.format(suite=REPO / "benchmarks/suites/qa-short.jsonl"))
    env = os.environ | {
        "PREFECT_HOME": str(home / "prefect"),
        "EVALFLOW_HOME": str(home / "evalflow"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Prefect's default (20 s) is too short for a loaded 2-core machine.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("EVALFLOW_DATABASE_URL", None)
    started = time.perf_counter()
    marks: dict[str, float] = {}
    process = subprocess.Popen(
        [evalflow, "run", str(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        now = time.perf_counter() - started
        if "Beginning flow run" in line:
            marks.setdefault("flow_start_s", now)
        if "Finished in state" in line and "Flow run" in line:
            marks["flow_end_s"] = now
    process.wait()
    marks["total_s"] = time.perf_counter() - started
    marks["exit_after_flow_s"] = marks["total_s"] - marks.get("flow_end_s", marks["total_s"])
    if process.returncode != 0:
        raise SystemExit(f"{evalflow} exited {process.returncode}:\n{''.join(lines[-20:])}")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--evalflow", nargs="+", default=[str(Path(sys.executable).parent / "evalflow")]
    )
    args = parser.parse_args()
    print("load average:", os.getloadavg())
    results: dict[str, list[dict[str, float]]] = {e: [] for e in args.evalflow}
    for i in range(args.runs):
        for evalflow in args.evalflow:
            marks = one_run(evalflow)
            results[evalflow].append(marks)
            figures = "  ".join(f"{k}={v:.2f}" for k, v in marks.items())
            print(f"run {i + 1} {evalflow}: {figures}", flush=True)
    for evalflow, runs in results.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"median {evalflow}: " + "  ".join(f"{k}={v:.2f}" for k, v in medians.items()))
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
