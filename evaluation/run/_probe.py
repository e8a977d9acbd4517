"""`evalflow plan --probe`: measure now, with a few real generations, each host and model
that no earlier run measured.

Per host and model of the sweep: one generation to load the model (not counted), then
one round of the host's lanes (``max(2, slots)`` generations, at most ``slots`` at once:
the same dispatcher and the same backends as a run, so what is measured is the
latency a run will see at those slots). With ``lanes`` each request also holds a slot of
the host's shared limit, as a run's do, so a probe never adds requests beyond the
host's slots to a sweep already running there. The work is the sweep's own first config of the
model on its first cases; nothing is stored. Hosts are probed in parallel, the models
of one host one after another.

A simulated host needs no probe: `plan --time-scale N` runs a config's generations on
the simulated backend at time scale 0 (:func:`simulated_figures`), and a run at N sleeps
N × their latencies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from evaluation.backends.base import Backend
from evaluation.backends.retry import RetryPolicy
from evaluation.run._dispatch import dispatch
from evaluation.run._estimate import Figure, Probed
from evaluation.run._generate import ChunkOutcome, run_chunk
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import HostSpec
from evaluation.suites import Suite

if TYPE_CHECKING:
    from evaluation.run._sweep import Sweep

MIN_MEASURED = 2


class Lane(Protocol):
    """A lane's hold on a host slot (``tasks.adapters.lane_slot.LaneSlot``)."""

    def attempt(self) -> AbstractAsyncContextManager: ...

    def finish(self) -> None: ...


Lanes = Callable[[str], Lane]  # host name -> a lane for one chunk


def probe_items(items: Sequence[WorkItem], host: HostSpec, model: str) -> list[WorkItem]:
    """The model's first config on its first cases: one to load it, then one per lane."""
    first = next(item.config for item in items if item.model == model)
    seen: list[WorkItem] = []
    for item in items:
        if item.config == first and item.case.id not in {s.case.id for s in seen}:
            seen.append(item)
    wanted = 1 + max(MIN_MEASURED, host.slots)
    return (seen * wanted)[:wanted] if seen else []


async def probe(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    backends: Mapping[str, Backend],
    suite: Suite,
    pairs: Collection[tuple[str, str]],
    lanes: Lanes | None = None,
) -> tuple[list[Probed], list[str]]:
    """What each (model, host) of ``pairs`` measured now, and a line for each that could
    not be measured (the host did not answer, every probe generation failed)."""
    models = list(dict.fromkeys(item.model for item in items))
    real = [h for h in hosts if h.kind != "simulated"]
    results = await asyncio.gather(
        *(
            _probe_host(
                items, h, [m for m in models if (m, h.name) in pairs], backends, suite, lanes
            )
            for h in real
        )
    )
    probed = [p for found, _ in results for p in found]
    problems = [line for _, lines in results for line in lines]
    return probed, problems


async def _probe_host(
    items: Sequence[WorkItem],
    host: HostSpec,
    models: Sequence[str],
    backends: Mapping[str, Backend],
    suite: Suite,
    lanes: Lanes | None,
) -> tuple[list[Probed], list[str]]:
    backend = backends[host.name]
    policy = RetryPolicy(max_attempts=1)

    async def keep(_records: Sequence[GenerationRecord]) -> None:
        return None

    async def run(lane_host: HostSpec, chunk: list[WorkItem]) -> ChunkOutcome:
        lane = lanes(host.name) if lanes is not None else None
        try:
            return await run_chunk(
                backend,
                chunk,
                suite=suite,
                policy=policy,
                sink=keep,
                slot=lane.attempt if lane is not None else None,
            )
        finally:
            if lane is not None:
                lane.finish()

    found: list[Probed] = []
    problems: list[str] = []
    for model in models:
        work = probe_items(items, host, model)
        load = await dispatch(work[:1], [replace(host, slots=1)], run, chunk_size=1)
        if load.hosts_down:
            problems.append(f"probe: {host.name} did not answer: {load.hosts_down[host.name]}")
            return found, problems
        if load.hosts_overloaded:  # "gpu answered 503 (overloaded) to 4 tries: ..."
            problems.append(f"probe: {load.hosts_overloaded[host.name]}")
            return found, problems
        records: list[GenerationRecord] = []

        async def measured(
            lane_host: HostSpec, chunk: list[WorkItem], into: list = records
        ) -> ChunkOutcome:
            outcome = await run(lane_host, chunk)
            into.extend(outcome.records)
            return outcome

        await dispatch(work[1:], [host], measured, chunk_size=1)
        ok = [r.result for r in records if r.result is not None]
        if not ok:
            errors = {r.error for r in records if r.error}
            problems.append(f"probe: {model} on {host.name} failed: {'; '.join(sorted(errors))}")
            continue
        found.append(Probed.of(host, model, ok))
    return found, problems


SIMULATED_SAMPLE = 100
"""Generations per config :func:`simulated_figures` runs (its first pending ones): plan
stays quick on a large sweep (the demo's 432 take ~0.1 s)."""


async def simulated_figures(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    backends: Mapping[str, Backend],
    suite: Suite,
    time_scale: float,
) -> dict[str, Figure]:
    """Per config hash, the seconds per generation a run at ``time_scale`` sleeps on a
    simulated host: its items (up to ``SIMULATED_SAMPLE``) run now on the first
    simulated host serving its model, whose backend must not sleep (time scale 0;
    nothing stored), their mean simulated latency × ``time_scale`` (0: × that host's
    own ``?time_scale=``, as a run given none sleeps). Simulated latency does not
    depend on the host."""
    simulated = [h for h in hosts if h.kind == "simulated"]
    chunks: dict[tuple[str, HostSpec], list[WorkItem]] = {}
    for item in items:
        host = next((h for h in simulated if h.serves(item.model)), None)
        if host is None:
            continue
        work = chunks.setdefault((item.config.hash, host), [])
        if len(work) < SIMULATED_SAMPLE:
            work.append(item)
    figures: dict[str, Figure] = {}
    for (config_hash, host), work in chunks.items():
        scale = time_scale or host.time_scale
        records: list[GenerationRecord] = []

        async def keep(found: Sequence[GenerationRecord], into: list = records) -> None:
            into.extend(found)

        policy = RetryPolicy(max_attempts=1)
        await run_chunk(backends[host.name], work, suite=suite, policy=policy, sink=keep)
        timed = [r.result.latency_s for r in records if r.result and r.result.latency_s]
        if timed:
            figures[config_hash] = Figure(
                scale * sum(timed) / len(timed),
                f"simulated: the mean latency of {len(timed)} of its generations run just "
                f"now, × time scale {scale:g}",
            )
    return figures


def sweep_simulated_figures(
    sweep: Sweep, items: Sequence[WorkItem], time_scale: float
) -> dict[str, Figure]:
    """The simulated hosts' seconds per generation at ``time_scale`` (0: each host's
    ``?time_scale=``), by config hash (:func:`simulated_figures`), on the sweep's own
    backends (time scale 0: nothing slept)."""
    from evaluation.run._sweep import open_backends

    async def run() -> dict[str, Figure]:
        backends = open_backends(sweep)
        try:
            hosts = sweep.spec.hosts
            return await simulated_figures(items, hosts, backends, sweep.suite, time_scale)
        finally:
            await asyncio.gather(*(b.aclose() for b in backends.values()))

    return asyncio.run(run())
