"""What the embedded Prefect server (flows/embedded_server.py) costs in CPU by itself:
its start (launch to its first healthy answer), a flow of ``--tasks`` task runs through
it (its CPU per task run: their API calls and the events they send, counted until the
server settles, i.e. 2 s cost it under ``SETTLED_MS_PER_S`` a second), and then
``--idle-s`` seconds with nothing asked of it (its CPU per second: its services' loops,
what it spends while a run waits on slow model servers). Each run is a fresh
PREFECT_HOME and server, started the way `evalflow run` starts it, in a child process
with a checkout (``--code DIR``, several interleaved: before/after) first on the path.
Only the server process's own CPU (user + sys, /proc) is counted, not the client's.

    .venv/bin/python benchmarks/perf/server_idle.py [--runs 3] [--tasks 100] \
        [--idle-s 30] --code /path/to/before /path/to/after

Prints one line per run and the medians; the load average comes first and last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETTLED_MS_PER_S = 40.0  # the flow's events are recorded once 2 s cost less than this a second

# Runs in the child, with the checkout under test first on the path.
_CHILD = """
import json, os, sys, time
from flows.embedded_server import EmbeddedServer
from flows.run_control import embedded_prefect

tasks, idle_s = int(sys.argv[1]), float(sys.argv[2])
tick = os.sysconf("SC_CLK_TCK")
SETTLED_MS_PER_S = float(sys.argv[3])

def cpu(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / tick

figures = {}
started = time.perf_counter()
server = EmbeddedServer()
server.launch()
with embedded_prefect(server):
    server.wait_ready()
    pid = server.process.pid
    figures["start_s"] = time.perf_counter() - started
    figures["start_cpu"] = cpu(pid)
    if tasks:
        from prefect import flow, task

        @task
        def one(i):
            return i

        @flow
        def tasks_flow(n):
            return [one(i) for i in range(n)]

        before = cpu(pid)
        tasks_flow(tasks)
        # The server records the flow's events after it ends: count until it settles.
        settled, last = time.monotonic() + 120, cpu(pid)
        while time.monotonic() < settled:
            time.sleep(2)
            now = cpu(pid)
            if now - last < 2 * SETTLED_MS_PER_S / 1000:
                break
            last = now
        figures["ms_per_task_run"] = 1000 * (cpu(pid) - before) / tasks
    time.sleep(2)
    before = cpu(pid)
    time.sleep(idle_s)
    figures["idle_ms_per_s"] = 1000 * (cpu(pid) - before) / idle_s
    server.stop()
print("FIGURES " + json.dumps(figures))
"""


def one_run(code: Path, tasks: int, idle_s: float) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="evalflow-server-idle-"))
    env = os.environ | {
        "PYTHONPATH": str(code),
        "PREFECT_HOME": str(home / "prefect"),
        "EVALFLOW_HOME": str(home / "evalflow"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # as the CLI sets it
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    env.pop("PREFECT_API_URL", None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tasks), str(idle_s), str(SETTLED_MS_PER_S)],
            env=env,
            cwd=code,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            return json.loads(line.removeprefix("FIGURES "))
    raise SystemExit(f"{code} exited {done.returncode}:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=100, help="task runs of one flow (100)")
    parser.add_argument("--idle-s", type=float, default=30.0, help="idle seconds (30)")
    parser.add_argument("--code", nargs="+", type=Path, default=[REPO], help="checkouts")
    args = parser.parse_args()
    print("load average:", os.getloadavg(), flush=True)
    results: dict[Path, list[dict[str, float]]] = {c: [] for c in args.code}
    for i in range(args.runs):
        for code in args.code:
            figures = one_run(code.resolve(), args.tasks, args.idle_s)
            results[code].append(figures)
            line = "  ".join(f"{k}={v:.2f}" for k, v in figures.items())
            print(f"run {i + 1} {code} (load {os.getloadavg()[0]:.1f}): {line}", flush=True)
    for code, runs in results.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"median {code}: " + "  ".join(f"{k}={v:.2f}" for k, v in medians.items()))
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
