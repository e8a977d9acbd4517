"""Where the suite's time goes, on request: ``python -m pytest -p tests.support.cpu_timeline``
writes one JSON line per test to ``$CPU_TIMELINE`` (default ``cpu-timeline.jsonl`` in the
current folder): its xdist worker, when it started and ended, and the CPU it took (setup,
call and teardown), this process's and its whole process tree's (live descendants read
from /proc, finished ones as their parents reaped them: a server a test starts counts in
the test that runs while it works). CPU, not wall, tells what a test costs on a loaded
machine; the start and end times show where a worker idled (a group held to the end).

``python -m tests.support.cpu_timeline FILE [N]`` prints the totals, the N costliest tests
and files (30 unless told), and each worker's busy time and end."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Generator

import pytest

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _children_ticks() -> dict[int, list[tuple[int, int]]]:
    """Each parent's live children and their CPU ticks (their own and reaped children's)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        children.setdefault(int(fields[1]), []).append((int(entry), ticks))
    return children


def cpu_now() -> tuple[float, float]:
    """(this process's CPU, its process tree's besides it), in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree, live, pending = _children_ticks(), 0, [os.getpid()]
    while pending:
        for pid, ticks in tree.get(pending.pop(), ()):
            live += ticks
            pending.append(pid)
    return own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime + live / _TICKS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    own, tree = cpu_now()
    start = time.time()
    try:
        return (yield)
    finally:
        own_end, tree_end = cpu_now()
        line = {
            "id": item.nodeid,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "-"),
            "start": round(start, 3),
            "end": round(time.time(), 3),
            "cpu": round(own_end - own, 3),
            "tree": round(tree_end - tree, 3),
        }
        with open(os.environ.get("CPU_TIMELINE", "cpu-timeline.jsonl"), "a") as out:
            out.write(json.dumps(line) + "\n")


def summary(path: str, most: int = 30) -> str:
    with open(path) as timeline:
        rows = [json.loads(line) for line in timeline]
    if not rows:
        return f"{path}: no test"
    cpu = {r["id"]: r["cpu"] + r["tree"] for r in rows}
    files: Counter[str] = Counter()
    for r in rows:
        files[r["id"].split("::")[0]] += r["cpu"] + r["tree"]
    first = min(r["start"] for r in rows)
    lines = [f"{len(rows)} tests, {sum(cpu.values()):.0f} s CPU (tree included)"]
    for worker in sorted({r["worker"] for r in rows}):
        mine = [r for r in rows if r["worker"] == worker]
        busy = sum(r["end"] - r["start"] for r in mine)
        end = max(r["end"] for r in mine) - first
        lines.append(f"worker {worker}: {len(mine)} tests, busy {busy:.0f} s, ended at {end:.0f} s")
    lines.append(f"costliest {most} tests (CPU s, wall s):")
    walls = {r["id"]: r["end"] - r["start"] for r in rows}
    for test, seconds in Counter(cpu).most_common(most):
        lines.append(f"{seconds:8.1f} {walls[test]:8.1f}  {test}")
    lines.append(f"costliest {most} files (CPU s):")
    lines += [f"{seconds:8.1f}  {name}" for name, seconds in files.most_common(most)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(sys.argv[1], *(int(n) for n in sys.argv[2:3])))
