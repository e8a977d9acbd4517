"""Start-up and exit of `evalflow run` on the embedded Prefect server, for a tiny
simulated sweep (1 config × 36 cases; ``--spec`` another, e.g. the demo) on a fresh
PREFECT_HOME and results database each time: seconds from the command's start to its
first generation (the flow's "generating…" line, the request right after it), the
report stage (from "writing report…" to "report written") and the command's exit, each
with the CPU time (user + sys) the whole process tree had spent by then (the command, the
embedded Prefect server and any other child: this process is their subreaper, so a child
that outlives the command is counted too). On a loaded
machine wall time is mostly waiting for a CPU; CPU time is what a start costs. Several
evalflow executables (``--evalflow``) or checkouts (``--code DIR``: ``python -m
flows.cli`` with that checkout first on ``PYTHONPATH``) are interleaved so that machine
load hits them alike.

    .venv/bin/python benchmarks/perf/startup.py [--runs 3] [--spec FILE] \
        [--evalflow PATH ... | --code DIR ...]

Prints one line per run and the medians; the load average comes first and last.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
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
# (mark, a line that sets it): the first occurrence counts
MARKS = (
    ("first_generation", ": generating…"),
    ("report_start", ": writing report…"),
    ("report_end", "report written to"),
)
_TICK = os.sysconf("SC_CLK_TCK")


def _become_subreaper() -> None:
    """Orphaned descendants (a server outliving its command) are reparented here, so
    their CPU reaches RUSAGE_CHILDREN when they are reaped."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_cpu(root: int) -> tuple[float, float]:
    """CPU seconds of the live descendants of ``root`` (itself included), each with the
    children it has reaped; and of ``root`` alone (the command's own process)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / _TICK
    total = 0.0
    for pid in times:
        p = pid
        while p > 1 and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += times[pid]
    return total, times.get(root, 0.0)


def _command(target: str) -> tuple[list[str], dict[str, str], Path]:
    """An executable, or a checkout (a folder with flows/) run with this interpreter from
    that folder (``-m`` puts the working folder first on the path)."""
    if (Path(target) / "flows").is_dir():
        path = os.pathsep.join([str(Path(target).resolve()), os.environ.get("PYTHONPATH", "")])
        env = {"PYTHONPATH": path.rstrip(os.pathsep)}
        return [sys.executable, "-m", "flows.cli"], env, Path(target).resolve()
    return [target], {}, REPO


def one_run(target: str, spec_file: Path | None) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="evalflow-startup-"))
    spec = spec_file.resolve() if spec_file else home / "spec.yaml"
    if spec_file is None:
        spec.write_text(SPEC.format(suite=REPO / "benchmarks/suites/qa-short.jsonl"))
    command, extra, folder = _command(target)
    env = (
        os.environ
        | extra
        | {
            "PREFECT_HOME": str(home / "prefect"),
            "EVALFLOW_HOME": str(home / "evalflow"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # Prefect's default (20 s) is too short for a loaded 2-core machine.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
    )
    env.pop("PREFECT_API_URL", None)
    env.pop("EVALFLOW_DATABASE_URL", None)
    reaped_before = _children_cpu()
    started = time.perf_counter()
    marks: dict[str, float] = {}
    process = subprocess.Popen(
        [*command, "run", str(spec)],
        env=env,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        for mark, text in MARKS:
            if text in line and f"{mark}_s" not in marks:
                marks[f"{mark}_s"] = time.perf_counter() - started
                tree, command_alone = _tree_cpu(process.pid)
                marks[f"{mark}_cpu"] = tree + _children_cpu() - reaped_before
                if mark == "first_generation":  # the rest: the embedded server, mostly
                    marks["first_generation_command_cpu"] = command_alone
    process.wait()
    marks["exit_s"] = time.perf_counter() - started
    while True:  # the descendants it left (this process is their subreaper)
        try:
            os.wait()
        except ChildProcessError:
            break
    marks["tree_cpu"] = _children_cpu() - reaped_before
    if "report_start_s" in marks and "report_end_s" in marks:
        marks["report_s"] = marks["report_end_s"] - marks["report_start_s"]
        marks["report_cpu"] = marks["report_end_cpu"] - marks["report_start_cpu"]
    shutil.rmtree(home, ignore_errors=True)
    if process.returncode != 0:
        raise SystemExit(f"{target} exited {process.returncode}:\n{''.join(lines[-20:])}")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spec", type=Path, help="the sweep to run (default: 1 x 36 cases)")
    parser.add_argument(
        "--evalflow", nargs="+", default=[str(Path(sys.executable).parent / "evalflow")]
    )
    parser.add_argument("--code", nargs="+", help="checkouts to run instead of executables")
    args = parser.parse_args()
    _become_subreaper()
    targets = args.code or args.evalflow
    print("load average:", os.getloadavg(), flush=True)
    results: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
    for i in range(args.runs):
        for target in targets:
            marks = one_run(target, args.spec)
            results[target].append(marks)
            figures = "  ".join(f"{k}={v:.2f}" for k, v in marks.items())
            print(f"run {i + 1} {target} (load {os.getloadavg()[0]:.1f}): {figures}", flush=True)
    for target, runs in results.items():
        keys = [k for k in runs[0] if all(k in r for r in runs)]
        medians = {k: statistics.median(r[k] for r in runs) for k in keys}
        print(f"median {target}: " + "  ".join(f"{k}={v:.2f}" for k, v in medians.items()))
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
