"""A light lane worker runner for tests of ``evaluation.run._workers`` (no Prefect, no
host): each item's record is made at once, and the item ``hold`` names (its case id)
waits until the file ``go`` exists before it is recorded, so a test can act while a
worker's lane is on it; ``exit_note``: what the worker's heap is like as it exits."""

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


@dataclass(frozen=True)
class Plan:
    go: Path
    hold: str = ""  # the case id that waits for ``go``
    exit_note: Path | None = None  # the worker writes here, as it exits, how many are frozen


def _note_frozen(path: Path) -> None:
    path.write_text(str(gc.get_freeze_count()))


@asynccontextmanager
async def open_runner(plan: Plan, seats: Mapping[str, int]) -> AsyncIterator:
    if plan.exit_note is not None:
        atexit.register(_note_frozen, plan.exit_note)

    async def run(host, chunk, sink) -> ChunkOutcome:
        outcome = ChunkOutcome()
        while (item := chunk.start_next()) is not None:
            while item.case.id == plan.hold and not plan.go.exists():
                await asyncio.sleep(0.01)
            result = GenerationResult(f"{item.case.id}@{host.name}", "stop", 0.001, 0.001)
            record = GenerationRecord(item, host.name, 1, result=result)
            sink([record])
            outcome.records.append(slim(record))
        return outcome

    yield run
