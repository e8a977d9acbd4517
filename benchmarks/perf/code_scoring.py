"""Sandboxed code scoring: the overhead of one sandbox, and scoring 1,000 generations.

- ``overhead``: sandbox start to result for (a) an empty program (``python -I -S -c
  pass`` in the sandbox), (b) one problem of the code-python suite through the test
  harness (its reference solution and hidden tests), against (c) the same empty Python
  started without a sandbox: (a) − (c) is what bubblewrap, its cgroup (where one is
  created), its seccomp filter and prlimit add. Median and p95 of ``--runs`` runs, one
  at a time.
- ``throughput``: ``tests_passed`` over ``--generations`` distinct programs (reference,
  plausible-wrong and not-implemented answers to the suite's problems, each made unique
  by a comment so that no run is served from the cache), with at most ``--parallel``
  sandboxes at once (default: the CPU count); also the CPU time the sandboxes used
  (bwrap's, and the sandboxed Python's as the harness reports it), which on a shared
  machine says what the wall time would be on idle cores.

    .venv/bin/python benchmarks/perf/code_scoring.py
    .venv/bin/python benchmarks/perf/code_scoring.py --generations 1000 --parallel 2
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evaluation.metrics._code import CodeTask, extract_code  # noqa: E402
from evaluation.sandbox import Sandbox  # noqa: E402
from evaluation.sandbox._programs import CodeExecution  # noqa: E402
from evaluation.suites import load_suite  # noqa: E402

SUITE = REPO / "benchmarks" / "suites" / "code-python.jsonl"


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def overhead(runs: int) -> None:
    sandbox = Sandbox()
    print(f"whole-sandbox bound: {sandbox.enforcement}")
    empty = [sandbox.python, "-I", "-S", "-c", "pass"]
    sandboxed = [sandbox.run(empty).wall_s for _ in range(runs)]
    bare = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(empty, check=True)
        bare.append(time.perf_counter() - started)
    case = load_suite(SUITE).case("merge-intervals")
    task = CodeTask.of(case)
    execution = CodeExecution(sandbox, max_parallel=1)
    one = []
    for _ in range(runs):
        started = time.perf_counter()
        (report,) = execution.run_tests([(case.references[0], task.tests)])
        one.append(time.perf_counter() - started)
        assert report.all_passed, report.detail()
    print(f"empty program in the sandbox:       {_summary(sandboxed)}")
    print(f"empty program without a sandbox:    {_summary(bare)}")
    added = statistics.median(sandboxed) - statistics.median(bare)
    print(f"  the sandbox adds (medians):       {added * 1000:.0f} ms")
    print(f"one problem, {len(task.tests)} tests, harness: {_summary(one)}")


def throughput(generations: int, parallel: int) -> None:
    suite = load_suite(SUITE)
    cases = list(suite.cases)
    jobs = []
    kinds = {"reference": 0, "plausible wrong": 0, "not implemented": 0}
    for i in range(generations):
        case = cases[i % len(cases)]
        task = CodeTask.of(case)
        choice = (i // len(cases)) % 3
        if choice == 1 and "plausible_wrong" in case.metadata:
            program, kind = case.metadata["plausible_wrong"], "plausible wrong"
        elif choice == 2:
            program, kind = task.prefix + "    raise NotImplementedError\n", "not implemented"
        else:
            program, kind = case.references[0], "reference"
        kinds[kind] += 1
        output = f"```python\n{program}# generation {i}\n```"
        jobs.append((extract_code(output, task.entry_point, task.prefix), task.tests))
    execution = CodeExecution(Sandbox(), max_parallel=parallel)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    reports = execution.run_tests(jobs)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # bwrap's own CPU reaches RUSAGE_CHILDREN; the sandboxed Python's does not (its parent
    # is bwrap's init in another pid namespace), so the harness reports it.
    setup = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    inside = sum(r.cpu_s or 0.0 for r in reports)
    cpu = setup + inside
    passed = sum(r.all_passed for r in reports)
    killed = sum(r.killed is not None for r in reports)
    print(
        f"{generations} generations ({', '.join(f'{v} {k}' for k, v in kinds.items())}), "
        f"{parallel} sandboxes at once: {wall:.1f} s, {wall / generations * 1000:.0f} ms per "
        f"generation; {passed} passed every test, {killed} killed by a limit"
    )
    cores = os.cpu_count() or 1
    print(
        f"  CPU: {inside:.1f} s in the sandboxed Python + {setup:.1f} s in bwrap = "
        f"{cpu / generations * 1000:.0f} ms per generation: {cpu / cores:.0f} s of wall time "
        f"on {cores} idle cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=("overhead", "throughput", "all"), default="all")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--generations", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), CPUs: {os.cpu_count()}")
    if args.scenario in ("overhead", "all"):
        overhead(args.runs)
    if args.scenario in ("throughput", "all"):
        throughput(args.generations, args.parallel)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
