"""A light lane worker runner for tests of ``evaluation.run._workers`` (no Prefect, no
host): each item's record is made at once, and the item ``hold`` names (its case id)
waits until the file ``go`` exists before it is recorded, so a test can act while a
worker's lane is on it (its lane says meanwhile that it waits for a slot, then holds
one; ``holding``: that it holds one); ``exit_note``: what the worker's heap is like as it exits."""

from __future__ import annotations

import asyncio
import atexit
import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from evaluation.backends.base import GenerationResult
from evaluation.run._generate import ChunkOutcome, slim
from evaluation.run._work import GenerationRecord

# what a lane worker does without: Prefect's client, the database layer, the scoring
# tables, and httpx's command line (click, rich, pygments)
NOT_IN_A_WORKER = frozenset(("prefect", "sqlalchemy", "pandas", "click", "rich", "pygments"))


@dataclass(frozen=True)
class Plan:
    go: Path
    hold: str = ""  # the case id that waits for ``go``
    holding: bool = False  # its lane waits for ``go`` holding its slot (its request sent)
    exit_note: Path | None = None  # the worker writes here, as it exits, how many are frozen


async def until(condition, timeout_s: float = 120.0) -> None:
    """Poll ``condition`` until it holds (lane workers start in seconds on a loaded
    machine; a lane polls a full limit about once a second)."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def _note_frozen(path: Path) -> None:
    path.write_text(str(gc.get_freeze_count()))


@asynccontextmanager
async def open_runner(plan: Plan, seats: Mapping[str, int]) -> AsyncIterator:
    if plan.exit_note is not None:
        atexit.register(_note_frozen, plan.exit_note)

    async def run(host, chunk, sink, watch) -> ChunkOutcome:
        outcome = ChunkOutcome()
        while (item := chunk.start_next()) is not None:
            if item.case.id == plan.hold and not plan.go.exists():
                if not plan.holding:
                    watch.waits()  # as a lane waiting for a slot, until ``go``
                    while not plan.go.exists():
                        await asyncio.sleep(0.01)
                watch.holds()
                while not plan.go.exists():  # as a request on the wire, until ``go``
                    await asyncio.sleep(0.01)
            result = GenerationResult(f"{item.case.id}@{host.name}", "stop", 0.001, 0.001)
            record = GenerationRecord(item, host.name, 1, result=result)
            sink([record])
            outcome.records.append(slim(record))
        return outcome

    yield run


@asynccontextmanager
async def noting_lanes(plan: tuple, seats: Mapping[str, int]) -> AsyncIterator:
    """``tasks.lane_workers.open_lanes(plan[0], seats)``, and as it closes (its chunks
    run, its slots given back) the modules of ``NOT_IN_A_WORKER`` the worker loaded,
    written to ``plan[1]`` with ``-PID`` after its name."""
    import os
    import sys

    from tasks.lane_workers import open_lanes

    lanes, note = plan
    async with open_lanes(lanes, seats) as run:
        yield run
    mine = note.with_name(f"{note.name}-{os.getpid()}")
    mine.write_text(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in NOT_IN_A_WORKER)))
