"""How long does `evalflow run` take end to end, and where does the time go?

Starts a stand-in host in its own process (4 slots, 200 ms per request: it speaks both
Ollama and OpenAI's /v1), then runs the same 800-generation sweep (100 cases x 8
temperatures, 16 tokens) as a real `evalflow run` subprocess, twice: "cold" with fresh
PREFECT_HOME / EVALFLOW_HOME (the embedded server creates and migrates its database),
"warm" reusing them. The command is the installed `evalflow` executable itself, so its
imports and the embedded server's start overlap as they do for a user. The phases come
from the run's own log timestamps:

    start        process start -> the flow run begins (imports, sweep and host checks,
                 the embedded Prefect server started and ready)
    setup        -> hosts checked, experiment registered (the flow's first tasks)
    generation   -> the last generation chunk finishes
    post         -> score, aggregate, leaderboard, comparison, report, finish
    exit         -> the process has printed the leaderboard and exited

With ``--inspect-python PATH`` (a Python that has inspect_ai; not a project dependency),
it also runs Inspect AI on the same stand-in through its OpenAI-compatible provider: the
same 100 cases x 8 temperatures (one task per temperature, all in one `inspect eval`),
at most 4 connections, exact-match scoring; cold = a fresh log directory, first run.

    .venv/bin/python benchmarks/perf/sweep_e2e.py [--runs cold,warm] [--inspect-python P]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPERATURES = [round(0.1 * i, 1) for i in range(8)]
MODEL = "bench:1b"

# Prefect's console lines: "10:41:23.456 | INFO    | Task run 'score-8f2' - Finished ..."
_LOG_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| (\w+)\s*\| (.+?) - (.*)$")
_TASK_DONE = re.compile(r"Task run '(.+)' - Finished in state (\w+)")

INSPECT_TASKS = """
from inspect_ai import Task, task
from inspect_ai.dataset import FieldSpec, json_dataset
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import exact
from inspect_ai.solver import generate

def _bench(temperature):
    dataset = json_dataset(
        "{suite}", FieldSpec(input="input", target="references", id="id")
    )
    return Task(
        dataset=dataset,
        solver=generate(),
        scorer=exact(),
        config=GenerateConfig(temperature=temperature, max_tokens=16),
    )
{tasks}
"""


@dataclass
class Phases:
    """Seconds per phase of one end-to-end run, and what it reported."""

    label: str
    wall_s: float
    phases: dict[str, float] = field(default_factory=dict)
    post_tasks: dict[str, float] = field(default_factory=dict)
    generation_s: float | None = None
    cpu_s: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    exit_code: int = 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_standin(port: int, slots: int, latency_ms: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.support.standin_ollama", "--port", str(port)]
    command += ["--slots", str(slots), "--latency-ms", str(latency_ms), "--models", MODEL]
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the stand-in did not start")


def write_suite(folder: Path, cases: int) -> Path:
    rows = [
        {"id": f"q{i}", "input": f"Question {i}: what is {i} plus one?", "references": [str(i + 1)]}
        for i in range(cases)
    ]
    (folder / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "bench.suite.yaml").write_text(
        "name: bench\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    return folder / "bench.jsonl"


def write_spec(folder: Path, suite: Path, port: int, slots: int) -> Path:
    spec = {
        "name": "bench-e2e",
        "suite": str(suite),
        "models": [MODEL],
        "grid": {"temperature": TEMPERATURES, "num_predict": [16]},
        "hosts": [{"name": "bench", "url": f"http://127.0.0.1:{port}", "slots": slots}],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _clock(stamp: str, day: datetime) -> float:
    """A console HH:MM:SS.fff stamp (local time) on ``day`` as epoch seconds."""
    t = datetime.strptime(stamp, "%H:%M:%S.%f")
    at = day.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=t.microsecond)
    return at.timestamp()


def run_evalflow(label: str, spec: Path, home: Path, experiment: str) -> Phases:
    env = os.environ | {
        "PREFECT_HOME": str(home / "prefect"),
        "EVALFLOW_HOME": str(home / "evalflow"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PREFECT_API_URL", None)
    database = f"sqlite:///{home / 'results.db'}"
    # -v: the phases are read from Prefect's own lines (flow start, task and flow ends), which
    # the default output leaves out.
    evalflow = Path(sys.executable).with_name("evalflow")
    command = [str(evalflow), "-v", "--database", database, "run", str(spec)]
    command += ["--experiment", experiment]
    day = datetime.now()
    result, proc, start, end = _timed_run(label, command, REPO, env, home / f"{label}.log")
    marks: dict[str, float] = {}
    post: dict[str, float] = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _LOG_LINE.match(line.strip())
        if not m:
            continue
        at = _clock(m.group(1), day)
        message = m.group(4)
        if "Beginning flow run" in message:
            marks["flow_start"] = at
        elif message.startswith("generated "):
            marks["generated"] = at
        elif done := _TASK_DONE.search(line):
            name = done.group(1)
            if name.startswith("generate "):
                marks["last_chunk"] = max(marks.get("last_chunk", 0.0), at)
            elif name.startswith(("record-models", "register-experiment")):
                marks["setup_done"] = max(marks.get("setup_done", 0.0), at)
            else:
                post[name.rsplit("-", 1)[0]] = at
        elif message.startswith("Finished in state"):
            marks["flow_end"] = at
    if not {"flow_start", "setup_done", "last_chunk", "flow_end"} <= set(marks):
        raise RuntimeError(f"{label}: could not read the phases; see {home / label}.log")
    order = [
        ("start", start, marks["flow_start"]),
        ("setup", marks["flow_start"], marks["setup_done"]),
        ("generation", marks["setup_done"], marks["last_chunk"]),
        ("post", marks["last_chunk"], marks["flow_end"]),
        ("exit", marks["flow_end"], end),
    ]
    result.phases = {name: b - a for name, a, b in order}
    previous = marks["last_chunk"]
    after_generation = {name: at for name, at in post.items() if at >= previous}
    for name, at in sorted(after_generation.items(), key=lambda kv: kv[1]):
        result.post_tasks[name] = at - previous
        previous = at
    return result


def _timed_run(
    label: str, command: list[str], cwd: Path, env: dict[str, str], log: Path
) -> tuple[Phases, subprocess.CompletedProcess[str], float, float]:
    """Run ``command``, keep its output in ``log``; wall and children's CPU time, load,
    exit code, and the start and end clock times the phases are measured against."""
    before = os.times()
    start = time.time()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    end = time.time()
    after = os.times()
    log.write_text(proc.stdout + proc.stderr)
    result = Phases(label, end - start, exit_code=proc.returncode, load=os.getloadavg())
    result.cpu_s = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return result, proc, start, end


def run_inspect(label: str, python: Path, folder: Path, port: int, slots: int) -> Phases:
    tasks = "".join(
        f"\n@task\ndef bench_t{int(t * 10)}():\n    return _bench({t})\n" for t in TEMPERATURES
    )
    task_file = folder / "inspect_bench.py"
    task_file.write_text(INSPECT_TASKS.format(suite=folder / "bench.jsonl", tasks=tasks))
    log_dir = folder / f"inspect-logs-{label}"
    env = os.environ | {
        "STANDIN_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "STANDIN_API_KEY": "unused",
        "INSPECT_LOG_DIR": str(log_dir),
    }
    # Relative to cwd: `inspect eval` globs its target and refuses an absolute path.
    command = [str(python), "-m", "inspect_ai", "eval", task_file.name]
    command += ["--model", f"openai-api/standin/{MODEL}", "--max-connections", str(slots)]
    command += ["--max-tasks", str(len(TEMPERATURES)), "--display", "plain"]
    result, _, start, end = _timed_run(label, command, folder, env, folder / f"{label}.log")
    starts, ends = [], []
    for log in log_dir.glob("*.json"):
        stats = json.loads(log.read_text())["stats"]
        starts.append(datetime.fromisoformat(stats["started_at"]).timestamp())
        ends.append(datetime.fromisoformat(stats["completed_at"]).timestamp())
    if starts:
        result.phases = {
            "before evals": min(starts) - start,
            "evals": max(ends) - min(starts),
            "after evals": end - max(ends),
        }
    return result


def report(results: list[Phases], ideal: float) -> None:
    for r in results:
        load = ", ".join(f"{x:.1f}" for x in r.load)
        print(f"\n{r.label}: {r.wall_s:.1f} s wall, {r.cpu_s:.1f} s CPU (exit {r.exit_code}),")
        print(f"  load average after the run: {load}")
        for name, seconds in r.phases.items():
            extra = f" = {ideal / seconds:.3f} of capacity" if name == "generation" else ""
            print(f"  {name:<12} {seconds:6.1f} s{extra}")
        for name, seconds in r.post_tasks.items():
            print(f"    {name:<22} {seconds:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--runs", default="cold,warm", help="which evalflow runs, in order")
    parser.add_argument("--inspect-python", type=Path, help="a Python with inspect_ai")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="evalflow-e2e-"))
    suite = write_suite(work, args.cases)
    port = free_port()
    standin = start_standin(port, args.slots, args.latency_ms)
    spec = write_spec(work, suite, port, args.slots)
    ideal = args.cases * len(TEMPERATURES) * args.latency_ms / 1000 / args.slots
    results = []
    try:
        for i, label in enumerate(args.runs.split(",")):
            results.append(run_evalflow(f"evalflow-{label}", spec, work, f"bench-{i}"))
        if args.inspect_python:
            for label in ("cold", "warm"):
                results.append(
                    run_inspect(f"inspect-{label}", args.inspect_python, work, port, args.slots)
                )
    finally:
        standin.terminate()
        standin.wait()
    print(f"{args.cases * len(TEMPERATURES)} generations; ideal generation time {ideal:.1f} s")
    print(f"work folder (logs): {work}")
    report(results, ideal)
    by_label = {r.label: r for r in results}
    for label in ("cold", "warm"):
        ours, theirs = by_label.get(f"evalflow-{label}"), by_label.get(f"inspect-{label}")
        if ours and theirs and theirs.exit_code != 0:
            print(f"\n{label}: no ratio, Inspect exited {theirs.exit_code} (see its log)")
        elif ours and theirs:
            print(f"\n{label}: evalflow / Inspect wall time = {ours.wall_s / theirs.wall_s:.2f}")


if __name__ == "__main__":
    main()
