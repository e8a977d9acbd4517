"""The generate stage's lanes in worker processes (``evaluation.run._workers``): what a
worker opens and how it runs a chunk, and the plan the run's process sends it.

A worker opens its own backends and its own ``HostSlots`` on the run's Prefect server
(the same per-host limits, so a host's slots are never over-committed across the
workers and the other runs; each worker's share is its ``capacity``), takes its seats'
slots first (``reserve``) and keeps them until it closes (``HostSlots(handoff_s=None)``:
its next chunk comes from another process, often more than a second later under load),
and runs each chunk as the run's process does
(``tasks.generation._generate``), its records sent back to the run's writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import get_current_settings

from evaluation.backends.retry import RetryPolicy
from evaluation.run._chunk import Chunk
from evaluation.run._generate import ChunkOutcome
from evaluation.run._pipelines import SharedCalls
from evaluation.run._sweep import Sweep, open_backends
from evaluation.run._work import GenerationRecord
from evaluation.run._workers import LaneWorkers, Sink, WorkerRunner
from evaluation.spec import HostSpec
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_client import slot_client
from tasks.adapters.spare_slots import PoolSpareSlots
from tasks.generation import GenerationContext, _generate


@dataclass(frozen=True)
class LanePlan:
    """What every worker of a run is given (with the run's Prefect settings, a test's
    temporary API included, in its environment before Prefect loads)."""

    sweep: Sweep
    limit_names: Mapping[str, str]
    simulated_time_scale: float | None  # None: each simulated host's own ?time_scale=


def start_lane_workers(
    count: int,
    sweep: Sweep,
    hosts: Sequence[HostSpec],
    limit_names: Mapping[str, str],
    simulated_time_scale: float | None,
) -> LaneWorkers:
    """``count`` workers for ``hosts``' lanes, starting (``await workers.ready()``)."""
    plan = LanePlan(sweep, dict(limit_names), simulated_time_scale)
    return LaneWorkers(count, hosts, open_lanes, plan, environment=_run_environment())


def _run_environment() -> dict[str, str]:
    """The run's Prefect settings as environment variables, with the API this run talks
    to: also where that is a temporary server this process started (no PREFECT_API_URL),
    which a worker must not start again for itself (its slots would be another
    database's, and under load its start timed out)."""
    settings = get_current_settings().to_environment_variables(exclude_unset=True)
    if (context := TaskRunContext.get() or FlowRunContext.get()) is not None:
        settings["PREFECT_API_URL"] = str(context.client.api_url)
    return settings


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
            await stack.enter_async_context(slot_client()),
            plan.limit_names,
            timeout_s=limits.first_request_timeout_s,
            capacity={name: n for name, n in seats.items() if n},
            handoff_s=None,  # its seats' slots kept until the run's generation ends
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

        async def run(host: HostSpec, chunk: Chunk, sink: Sink) -> ChunkOutcome:
            return await _generate(host, chunk, replace(context, writer=_SentBack(sink)))

        yield run
