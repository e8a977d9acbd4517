"""Spreading work over a pool of hosts.

Every host runs as many lanes as it has slots; a lane takes the next chunk of work
for a model its host serves, preferring the model the host already has loaded (fewer
model swaps) and otherwise the model fewest hosts are working on (spread). When a host
goes down its unfinished items go back to the queue for hosts serving the same model;
items no live host serves end as ``unservable`` with the reason, for the caller to
record as failed (a rerun picks them up).
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from evaluation.run._generate import ChunkOutcome
from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec

ChunkRunner = Callable[[HostSpec, list[WorkItem]], Awaitable[ChunkOutcome]]

MAX_CHUNK = 100
CHUNKS_PER_LANE = 2
GIVE_BACK_PIECES = 4  # a failed host's leftovers are shared by up to this many lanes


@dataclass
class DispatchReport:
    total: int
    generated: int = 0
    failed: int = 0
    chunks: int = 0
    unservable: list[tuple[WorkItem, str]] = field(default_factory=list)
    hosts_down: dict[str, str] = field(default_factory=dict)
    model_switches: dict[str, int] = field(default_factory=dict)
    items_per_host: dict[str, int] = field(default_factory=dict)


def default_chunk_size(n_items: int, total_slots: int) -> int:
    """Two chunks per lane, at most MAX_CHUNK items each. Every chunk is a Prefect task
    run, which costs several API writes before its first request: measured at 800
    generations on 4 slots, one task per generation ran 12.7x slower than the ideal,
    50-item chunks 1.28x, 200-item chunks 1.13x (benchmarks/perf/sweep_throughput.py).
    The cap keeps failover and progress granular on large sweeps."""
    if n_items == 0:
        return 1
    lanes = max(total_slots, 1) * CHUNKS_PER_LANE
    return max(1, min(MAX_CHUNK, math.ceil(n_items / lanes)))


class _Queue:
    """Chunks per model, in sweep order (which groups by model then num_ctx)."""

    def __init__(self, items: Sequence[WorkItem], chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.chunks: dict[str, deque[list[WorkItem]]] = defaultdict(deque)
        current: list[WorkItem] = []
        for item in items:
            if current and (
                len(current) >= chunk_size or _run_group(current[-1]) != _run_group(item)
            ):
                self.chunks[current[0].model].append(current)
                current = []
            current.append(item)
        if current:
            self.chunks[current[0].model].append(current)
        self.hosts_on: dict[str, int] = defaultdict(int)

    def take(self, host: HostSpec, loaded: str | None) -> list[WorkItem] | None:
        if loaded is not None and self.chunks.get(loaded):
            return self.chunks[loaded].popleft()
        candidates = [m for m, q in self.chunks.items() if q and host.serves(m)]
        if not candidates:
            return None
        model = min(candidates, key=lambda m: (self.hosts_on[m], -len(self.chunks[m])))
        return self.chunks[model].popleft()

    def give_back(self, items: list[WorkItem]) -> None:
        """Return unfinished work to the front of its model's queue, split again so
        several lanes of the remaining hosts can share it."""
        size = max(1, min(self.chunk_size, math.ceil(len(items) / GIVE_BACK_PIECES)))
        for start in reversed(range(0, len(items), size)):
            piece = items[start : start + size]
            self.chunks[piece[0].model].appendleft(piece)

    def remaining(self) -> list[WorkItem]:
        return [item for q in self.chunks.values() for chunk in q for item in chunk]


def _run_group(item: WorkItem) -> tuple[str, int | None]:
    """Items that can share a loaded model: runner options such as num_ctx reload it."""
    return (item.model, item.config.params.num_ctx)


async def dispatch(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    run: ChunkRunner,
    *,
    chunk_size: int | None = None,
) -> DispatchReport:
    """Run ``items`` on ``hosts`` through ``run`` (one call per chunk) until all are done
    or no live host can take what is left."""
    report = DispatchReport(total=len(items))
    size = chunk_size or default_chunk_size(len(items), sum(h.slots for h in hosts))
    queue = _Queue(items, size)
    changed = asyncio.Condition()
    in_flight = 0
    loaded: dict[str, str | None] = {h.name: None for h in hosts}

    async def lane(host: HostSpec) -> None:
        nonlocal in_flight
        while host.name not in report.hosts_down:
            async with changed:
                chunk = queue.take(host, loaded[host.name])
                while chunk is None and in_flight > 0 and host.name not in report.hosts_down:
                    await changed.wait()
                    chunk = queue.take(host, loaded[host.name])
                if chunk is None or host.name in report.hosts_down:
                    if chunk is not None:
                        queue.give_back(chunk)
                    return
                model = chunk[0].model
                if loaded[host.name] != model:
                    if loaded[host.name] is not None:
                        queue.hosts_on[loaded[host.name]] -= 1
                        report.model_switches[host.name] = (
                            report.model_switches.get(host.name, 0) + 1
                        )
                    loaded[host.name] = model
                    queue.hosts_on[model] += 1
                in_flight += 1
            try:
                outcome = await run(host, chunk)
            except BaseException:
                async with changed:
                    in_flight -= 1
                    changed.notify_all()
                raise
            async with changed:
                in_flight -= 1
                report.chunks += 1
                ok = sum(1 for r in outcome.records if r.ok)
                report.generated += ok
                report.failed += len(outcome.records) - ok
                report.items_per_host[host.name] = report.items_per_host.get(host.name, 0) + len(
                    outcome.records
                )
                if outcome.host_down:
                    report.hosts_down[host.name] = outcome.host_down_reason or "host down"
                    queue.give_back(outcome.unfinished)
                changed.notify_all()

    lanes = [asyncio.ensure_future(lane(h)) for h in hosts for _ in range(h.slots)]
    try:
        await asyncio.gather(*lanes)
    except BaseException:
        # A lane failed, or the dispatch was cancelled: stop every lane (once: a second
        # cancel would cut short a lane giving its host slot back) and wait until each
        # has, rather than leave lanes generating for a run that has ended.
        for running in lanes:
            if not running.done() and not running.cancelling():
                running.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        raise
    for item in queue.remaining():
        serving = [h.name for h in hosts if h.serves(item.model)]
        if not serving:
            reason = f"no host serves model {item.model!r}"
        else:
            downs = "; ".join(report.hosts_down.get(h, "") for h in serving)
            reason = f"every host serving {item.model!r} is down ({downs})"
        report.unservable.append((item, reason))
    return report
