"""How long `evalflow run` takes to refuse a sweep whose Ollama host is down (issue 11:
target <= 3 s, one line, nothing written), and `evalflow plan` a spec with a bad field.

Runs the real executable against a port nothing listens on and prints the median wall
time and CPU time (user + sys of the child) of a few runs, with the load average: on a
busy machine wall time is mostly waiting for a CPU, CPU time is what the refusal costs.

    .venv/bin/python benchmarks/perf/refusal_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EVALFLOW = Path(sys.executable).with_name("evalflow")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _time(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(EVALFLOW), *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode, done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = os.environ | {
            "EVALFLOW_HOME": str(root / "home"),
            "PREFECT_HOME": str(root / "prefect"),
        }
        suite = REPO / "benchmarks/suites/qa-short.jsonl"
        down = root / "down.yaml"
        down.write_text(
            f"name: down\nsuite: {suite}\nmodels: [llama3.2:1b]\n"
            f"hosts: [{{name: gpu, url: 'http://127.0.0.1:{_closed_port()}'}}]\n"
        )
        bad = root / "bad.yaml"
        bad.write_text(f"name: bad\nsuite: {suite}\nmodels: [m]\ngrid: {{temperature: [-1]}}\n")
        for label, args in (
            ("run, host down", ["run", str(down)]),
            ("plan, bad field", ["plan", str(bad)]),
        ):
            results = [_time(args, env) for _ in range(runs)]
            walls, cpus = [r[0] for r in results], [r[1] for r in results]
            codes = sorted({r[2] for r in results})
            print(
                f"{label:<16} median wall {statistics.median(walls):5.2f} s, "
                f"median CPU {statistics.median(cpus):5.2f} s, exit {codes}, "
                f"{len(results[0][3].splitlines())} line(s): {results[0][3][:90]}..."
            )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
