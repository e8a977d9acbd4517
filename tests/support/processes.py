"""Which of the machine's processes a test may call its own, when other test runs (another
pytest-xdist worker, another checkout's pytest) run the same kind of program meanwhile."""

from __future__ import annotations

import os
from pathlib import Path


def parent_pids() -> dict[int, int]:
    """Each live process of the machine and its parent (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _is_pytest(pid: int) -> bool:
    try:
        return b"pytest" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def not_another_test_runs(pids: list[int]) -> list[int]:
    """``pids`` less those that descend from a pytest process other than this one (or
    than this worker's controller): this run's processes and orphans (a process that
    escaped its parent, whoever started it) are kept."""
    parents, me = parent_pids(), os.getpid()
    kept = []
    for pid in pids:
        ancestor, others = parents.get(pid, 0), False
        while ancestor > 1 and ancestor != me:
            others = others or _is_pytest(ancestor)
            ancestor = parents.get(ancestor, 0)
        if ancestor == me or not others:
            kept.append(pid)
    return kept
