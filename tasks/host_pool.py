"""The generate stage's plumbing, so the ``evaluate`` flow shows only its stages: the
backends with their hosts checked (``open_host_pool``), then the whole generation on the
hosts' Prefect slots with progress and GPU telemetry (``generate_all``)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass

from prefect import get_run_logger, tags
from prefect.context import FlowRunContext
from prefect.utilities.annotations import quote
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from evaluation.backends import Backend
from evaluation.backends.retry import RetryPolicy
from evaluation.monitor import LiveRun, gpu_readings
from evaluation.run._dispatch import DispatchReport, Pace, dispatch
from evaluation.run._gpu import GpuSampler
from evaluation.run._heap import release_freed, settled_heap
from evaluation.run._history import measured_by_address
from evaluation.run._pipelines import SharedCalls
from evaluation.run._preflight import HostCheck
from evaluation.run._rate import WorkMix, request_timeouts, work_mix
from evaluation.run._record_writer import RecordWriter
from evaluation.run._sweep import Sweep, open_backends
from evaluation.run._telemetry import ConfigGpu, RunTelemetry, local_hosts
from evaluation.run._work import WorkItem
from evaluation.run._writer_process import WriterProcess, stores_apart
from evaluation.spec import HostSpec
from evaluation.storage.db import database_name, locked, session_scope
from evaluation.storage.repository import generated_configs
from evaluation.storage.text_search import index_new_outputs
from evaluation.storage.throughput import measured_throughput
from tasks.adapters.cancellation import unless_cancelled
from tasks.adapters.host_limits import size_limits
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.prefect_client import prefect_client
from tasks.adapters.slot_holders import run_holders
from tasks.adapters.slot_registry import Registry
from tasks.adapters.spare_slots import PoolSpareSlots
from tasks.generation import (
    GenerationContext,
    generate_chunk,
    generate_on_host,
    host_tag,
    record_writer,
)
from tasks.hosts import check_hosts
from tasks.lane_workers import lane_plan, start_lane_workers
from tasks.progress import ProgressArtifact
from tasks.results import artifact_key


@dataclass(frozen=True)
class HostPool:
    """The sweep's open backends and what the host checks found."""

    backends: Mapping[str, Backend]
    checks: Mapping[str, HostCheck]
    simulated_time_scale: float | None = 0.0  # the lane workers' own backends' (None: hosts')

    def up(self, hosts: Sequence[HostSpec]) -> tuple[HostSpec, ...]:
        return tuple(h for h in hosts if self.checks[h.name].up)

    def answers_at_once(self, host: HostSpec) -> bool:
        """``host`` is simulated and sleeps none of its simulated latency (time scale 0,
        the run's ``--time-scale`` else the host's ``?time_scale=``)."""
        scale = host.time_scale if self.simulated_time_scale is None else self.simulated_time_scale
        return host.kind == "simulated" and scale == 0


Send = Callable[[list[WorkItem]], Awaitable[DispatchReport]]
Batches = Callable[[Send], Awaitable[DispatchReport]]
"""Runs the work as several dispatches (a race's rounds), given the one that sends."""


@dataclass(frozen=True)
class Generated:
    """What the generate stage did; ``cancelled``: the flow run was cancelled (from the
    UI or the API) and generation stopped before the work was done."""

    report: DispatchReport
    gpu: Mapping[str, ConfigGpu]
    seconds: float
    cpu_seconds: float
    cancelled: bool = False


@asynccontextmanager
async def open_host_pool(
    sweep: Sweep, *, simulated_time_scale: float = 0.0
) -> AsyncIterator[HostPool]:
    """The sweep's backends, every model (embedding models too) checked on every host
    before anything is written; closed on the way out. ``simulated_time_scale`` 0: each
    simulated host sleeps as its url's ``?time_scale=`` says (0 without)."""
    scale = simulated_time_scale or None
    backends = open_backends(sweep, simulated_time_scale=scale)
    try:
        checks = await check_hosts(backends, sweep.required_models, sweep.configs)
        yield HostPool(backends, checks, scale)
    finally:
        await asyncio.gather(*(b.aclose() for b in backends.values()))


def stored_apart(engine: Engine, workers: int) -> bool:
    """Whether ``generate_all`` stores from a writer process (``stores_apart``)."""
    return stores_apart(engine.url.render_as_string(hide_password=False), workers=workers)


async def generate_all(
    engine: Engine,
    experiment_id: int,
    experiment: str,
    sweep: Sweep,
    pool: HostPool,
    pending: Sequence[WorkItem],
    *,
    chunk_size: int | None = None,
    batches: Batches | None = None,
    workers: int = 1,
) -> Generated:
    """Every pending item, spread over the live hosts' slots (each host's Prefect
    concurrency limit sized first), with a progress artifact and GPU telemetry;
    ``batches``, when given, decides what to send and when (a race, round by round);
    ``workers`` > 1: the lanes run in that many processes (``tasks.lane_workers``).
    Stops within a couple of seconds when the flow run is cancelled
    (tasks/adapters/cancellation.py), its slots given back."""
    limits = sweep.spec.limits
    hosts = pool.up(sweep.spec.hosts)
    sampler = GpuSampler()
    local = local_hosts(hosts)
    # NVML starts (pynvml's import, the driver) in a thread while the API is asked below,
    # not on the event loop as the phase starts
    opening = asyncio.ensure_future(asyncio.to_thread(sampler.open)) if local else None
    label = f"'{experiment}' (process {os.getpid()} on {socket.gethostname()})"
    registry: Registry | None = None  # where the run's slots are listed, once they open
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(prefect_client())
        limit_names = await size_limits(client, hosts)
        telemetry = RunTelemetry(sampler, pool.backends, local=local)

        def whose(host: str) -> list[tuple[str, int]]:
            """Who holds ``host``'s slots, as the slot registry lists them, with the
            run's own lanes' take under way (``run_holders``)."""
            if registry is None:
                return []
            taking = slots.taking(host) if slots is not None else 0
            return run_holders(registry.folder, limit_names[host], label, taking=taking)

        live = LiveRun(
            engine,
            experiment,
            total=len(pending),
            slots={host.name: host.slots for host in hosts},
            gpu=_gpu_now(sampler, telemetry, measure=bool(local)),
            say=get_run_logger().warning,
            timeouts=request_timeouts(limits),
            never_hung=frozenset(host.name for host in hosts if host.kind == "simulated"),
            whose=whose,
            slot_timeout_s=limits.first_request_timeout_s,
        )
        progress = await ProgressArtifact.create(
            artifact_key(experiment, "progress"),
            experiment,
            total=len(pending),
            mix=measured_mix(engine, pending, hosts, pool),
            live=live,
        )
        storing = None  # with lanes in workers, the records are stored by a process too
        if stored_apart(engine, workers):
            url = engine.url.render_as_string(hide_password=False)
            storing = stack.enter_context(WriterProcess.running(url, experiment_id))
        writer = record_writer(engine, experiment_id, progress.stored, process=storing)
        slots, shared, lanes = None, None, None
        if workers > 1:  # their slots are their own; what they send back is stored here
            get_run_logger().info(
                "starting %d lane workers: each a Python process that imports evalflow's "
                "modules and takes its share of the host slots before the first request",
                workers,
            )
            progress.waiting(f"starting {workers} lane workers…")  # seconds at a terminal
            plan = lane_plan(sweep, limit_names, pool.simulated_time_scale, client, label)
            registry = plan.registry
            lanes = start_lane_workers(workers, hosts, plan)
            stack.push_async_callback(_flushed_quietly, writer)
            stack.push_async_callback(lanes.close)
            stack.enter_context(lanes.counted())  # a stop waits for their cases too
        else:
            slots = await HostSlots.open(
                await stack.enter_async_context(prefect_client()),
                limit_names,
                timeout_s=limits.first_request_timeout_s,
                capacity={host.name: host.slots for host in hosts},
                label=label,
            )
            registry = slots.registry
            stack.push_async_callback(slots.close)
            shared = SharedCalls(pool.backends, PoolSpareSlots(slots, hosts))
        context = GenerationContext(
            engine=engine,
            experiment_id=experiment_id,
            suite=sweep.suite,
            backends=pool.backends,
            slots=slots,
            policy=RetryPolicy(max_attempts=limits.max_attempts),
            writer=writer,
            shared=shared,
            workers=lanes,
        )

        async def run(host, items):
            # one lane: one request on the wire at a time, once it holds its slot
            with live.lane(host.name) as lane:
                return await generate_chunk(host, items, context, lane)

        async def on_host(host, lanes):
            with tags(host_tag(host)):
                await generate_on_host(host, quote(lanes))

        if opening is not None:
            await opening
        # out of the collector's walks; what the lanes left in cycles collected (_heap)
        stack.enter_context(settled_heap(collect=True))
        started, started_cpu = time.perf_counter(), time.process_time()
        if lanes is not None:
            await lanes.ready()
        else:
            await slots.reserve(hosts)
        progress.work_starts()
        stack.enter_context(telemetry)
        live.start()
        stack.enter_context(live.listed())  # the terminal's line reads its lanes
        stack.push_async_callback(_stopped, asyncio.create_task(live.keep_written()))

        pace = Pace()  # a race's later rounds start from the hosts' pace so far
        first = partly_done(engine, experiment_id, pending)

        async def send(items: list[WorkItem]) -> DispatchReport:
            report = await dispatch(
                items,
                hosts,
                telemetry.wrap(run),
                chunk_size=chunk_size,
                pace=pace,
                on_host=on_host,
                on_unservable=progress.never_answered,
                first_models=first,
            )
            if lanes is not None:  # there a lane does not wait at each chunk's end for a
                await writer.flush()  # write of the batch in progress: stored here instead
            return report

        work = send(list(pending)) if batches is None else batches(send)
        flow_run = FlowRunContext.get()
        flow_run_id = flow_run.flow_run.id if flow_run and flow_run.flow_run else None
        report = await unless_cancelled(work, client, flow_run_id)
        if report is None:  # cancelled: what was generated is stored, not redone later
            if lanes is not None:
                await lanes.close()  # what they finish meanwhile comes back first
            await writer.flush()
        await progress.flush()
        live.flush()  # what the write interval held back, before the stage moves on
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - started_cpu
    release_freed()  # what the lanes left, before the stages that read the whole run
    await asyncio.to_thread(_index_outputs, engine)
    if report is None:
        return Generated(DispatchReport(total=len(pending)), {}, seconds, cpu_seconds, True)
    return Generated(report, telemetry.summary(), seconds, cpu_seconds)


def _index_outputs(engine: Engine) -> None:
    """The outputs stored since the search index's last id indexed, in bulk, now that
    the phase is over (not row by row as stored: ``storage.text_search``). Where another
    run holds the database past the busy timeout they are left: a search reads them one
    by one until a later run's end indexes them."""
    try:
        index_new_outputs(engine)
    except DBAPIError as exc:
        if not locked(exc):
            raise
        get_run_logger().warning(
            "the output search index was not brought up to date (%s is busy): the view's "
            "search reads this run's outputs one by one until a later run indexes them",
            database_name(engine),
        )


async def _flushed_quietly(writer: RecordWriter) -> None:
    """What lane workers sent back while the stage ended, stored (its errors are the
    stage's own flush's to say)."""
    with suppress(Exception):
        await writer.flush()


async def _stopped(task: asyncio.Task) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def _gpu_now(
    sampler: GpuSampler, telemetry: RunTelemetry, *, measure: bool
) -> Callable[[], list[dict]]:
    """The live row's GPU readings: NVML's now (only where a host is on this machine)
    and the VRAM the Ollama hosts reported so far."""

    def now() -> list[dict]:
        readings = sampler.sample_recent().readings if measure and sampler.available else ()
        return gpu_readings(readings, telemetry.vram())

    return now


def partly_done(engine: Engine, experiment_id: int, pending: Sequence[WorkItem]) -> set[str]:
    """The models of ``pending`` whose configs a run of this experiment has generated
    before (resumed, a lane starts on these: ``dispatch``'s ``first_models``)."""
    with session_scope(engine) as session:
        generated = set(generated_configs(session, experiment_id))
    return {item.model for item in pending if item.config.hash in generated}


def measured_mix(
    engine: Engine, pending: Sequence[WorkItem], hosts: Sequence[HostSpec], pool: HostPool
) -> WorkMix | None:
    """The run's work mix with what earlier runs measured on these hosts: a real host's
    real generations, a simulated host's simulated ones (their stored latency is the
    simulated one, which the run's pace also counts, whatever the time scale). Without
    the latter every config not yet run here counted at this run's mean so far, and the
    demo's ETA said 9 s with 19 s left (its small model runs first).

    None (the ETA is the work left over the rate) where every host answers at once
    (``HostPool.answers_at_once``): a simulated latency then holds no slot for any time,
    and every generation takes about the same, the run's CPU. Weighed by them, a sweep
    whose larger models came last (0.12, 0.19, 0.32 s) read `ETA 20 s` with 8 s left."""
    if all(pool.answers_at_once(h) for h in hosts):
        return None
    real = [h for h in hosts if h.kind != "simulated"]  # by address too (newcomer F5)
    simulated = [h.name for h in hosts if h.kind == "simulated"]
    with session_scope(engine) as session:
        measured = measured_by_address(session, real) if real else []
        if simulated:
            measured += measured_throughput(session, simulated, simulated=True)
    return work_mix(pending, measured)
