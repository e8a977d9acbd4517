"""The generate stage's lanes in worker processes (``evaluation.run._workers``): what a
worker opens and how it runs a chunk, and the plan the run's process sends it.

A worker opens its own backends and its own ``HostSlots`` on the run's Prefect server
(the same per-host limits, so a host's slots are never over-committed across the
workers and the other runs; each worker's share is its ``capacity``), takes its seats'
slots first (``reserve``) and keeps them until it closes (``HostSlots(handoff_s=None)``:
its next chunk comes from another process, often more than a second later under load),
and runs each chunk as the run's process does
(``evaluation.run._chunk_run.generate_once``), its records sent back to the run's writer.

A worker imports no Prefect: it talks to the run's server through ``SlotApi`` (the same
REST calls as Prefect's client, with the run's settings found here, ``slot_api_settings``)
and records its slots in the registry the run's process found for that server. Prefect's
client was ~3.5 s of CPU of each worker's start (2 loaded cores); a worker only ever
needed it for its slots.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from evaluation.backends.retry import RetryPolicy
from evaluation.run._chunk import Chunk
from evaluation.run._chunk_run import GenerationContext, generate_once
from evaluation.run._generate import ChunkOutcome
from evaluation.run._pipelines import SharedCalls
from evaluation.run._slot_waits import LaneWatch
from evaluation.run._sweep import Sweep, open_backends
from evaluation.run._work import GenerationRecord
from evaluation.run._workers import LaneWorkers, Sink, WorkerRunner
from evaluation.spec import HostSpec
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_api import SlotApi, SlotApiSettings, slot_api_settings
from tasks.adapters.slot_registry import Registry, registry_at
from tasks.adapters.spare_slots import PoolSpareSlots

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient


@dataclass(frozen=True)
class LanePlan:
    """What every worker of a run is given: ``api``, how to reach the run's Prefect
    server (a test's temporary one included), and ``registry``, where the runs sharing
    it record their slots."""

    sweep: Sweep
    limit_names: Mapping[str, str]
    simulated_time_scale: float | None  # None: each simulated host's own ?time_scale=
    api: SlotApiSettings
    registry: Registry
    label: str = ""  # the run in words, in its workers' holder files (``HostSlots.open``)


def start_lane_workers(count: int, hosts: Sequence[HostSpec], plan: LanePlan) -> LaneWorkers:
    """``count`` workers for ``hosts``' lanes as ``plan`` says, starting (``await
    workers.ready()``)."""
    return LaneWorkers(count, hosts, open_lanes, plan)


def lane_plan(
    sweep: Sweep,
    limit_names: Mapping[str, str],
    simulated_time_scale: float | None,
    client: PrefectClient,
    label: str = "",
) -> LanePlan:
    """The plan of a run's workers on the Prefect server ``client`` talks to (read from
    the run's Prefect settings here: a worker reads none); ``label``: the run in words."""
    api = slot_api_settings(client)
    # As a worker's own Prefect client found it before: a server at that URL (never a
    # temporary one of its own), its slots by count where it is this run's embedded one.
    registry = registry_at(api.url, ephemeral=False)
    return LanePlan(sweep, dict(limit_names), simulated_time_scale, api, registry, label)


class _SentBack:
    """A worker's records, each sent to the run's writer as it is known."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def put(self, records: Sequence[GenerationRecord]) -> None:
        self._sink(records)

    async def flush(self) -> None:
        """Sent already; the run's process stores them before the chunk's outcome."""


@asynccontextmanager
async def open_lanes(plan: LanePlan, seats: Mapping[str, int]) -> AsyncIterator[WorkerRunner]:
    """In a worker: its backends and slots (``seats`` per host), and what runs a chunk."""
    sweep, limits = plan.sweep, plan.sweep.spec.limits
    hosts = tuple(h for h in sweep.spec.hosts if h.name in plan.limit_names)
    backends = open_backends(sweep, simulated_time_scale=plan.simulated_time_scale)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(lambda: asyncio.gather(*(b.aclose() for b in backends.values())))
        slots = await HostSlots.open(
            await stack.enter_async_context(SlotApi(plan.api)),
            plan.limit_names,
            registry=plan.registry,
            timeout_s=limits.first_request_timeout_s,
            capacity={name: n for name, n in seats.items() if n},
            handoff_s=None,  # its seats' slots kept until the run's generation ends
            label=plan.label,
        )
        stack.push_async_callback(slots.close)
        await slots.reserve(tuple(replace(h, slots=seats[h.name]) for h in hosts if seats[h.name]))
        context = GenerationContext(
            engine=None,
            experiment_id=0,
            suite=sweep.suite,
            backends=backends,
            slots=slots,
            policy=RetryPolicy(max_attempts=limits.max_attempts),
            writer=_SentBack(lambda records: None),
            shared=SharedCalls(backends, PoolSpareSlots(slots, hosts)),
        )

        async def run(host: HostSpec, chunk: Chunk, sink: Sink, watch: LaneWatch) -> ChunkOutcome:
            return await generate_once(host, chunk, replace(context, writer=_SentBack(sink)), watch)

        yield run
