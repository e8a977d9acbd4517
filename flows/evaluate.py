"""The `evaluate` flow: load a sweep, generate on the host pool, score, aggregate,
compare and publish. Rerunning it with the same spec resumes where it stopped."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.client.orchestration import get_client
from prefect.utilities.annotations import quote

from evaluation.adaptive import Level, level_cases, level_work
from evaluation.backends.retry import RetryPolicy
from evaluation.dispatch import dispatch
from evaluation.run_telemetry import RunTelemetry, local_hosts
from evaluation.settings import database_url, evalflow_home
from evaluation.storage.db import make_engine
from evaluation.sweep import open_backends
from evaluation.telemetry import GpuSampler
from flows.adaptive import check_smoke, generate_level
from flows.run_names import evaluate_run_name
from tasks.compare import compare_and_publish
from tasks.generation import GenerationContext, generate_chunk, host_tag
from tasks.host_slots import HostSlots, size_limits, slot_client
from tasks.hosts import check_hosts
from tasks.progress import ProgressArtifact
from tasks.report import publish_report
from tasks.results import aggregate, artifact_key, publish, score
from tasks.sweep import (
    finish,
    load_sweep,
    record_host_models,
    record_outcome,
    record_unservable,
    register,
)
from tasks.telemetry import record_telemetry


@flow(
    name="evaluate",
    flow_run_name=evaluate_run_name,
    on_failure=[record_outcome],
    on_crashed=[record_outcome],
    on_cancellation=[record_outcome],
)
async def evaluate(
    spec_path: str,
    experiment: str | None = None,
    database: str | None = None,
    simulated_time_scale: float = 0.0,
    chunk_size: int | None = None,
    level: Level = "full",
    limit: int | None = None,
) -> dict[str, Any]:
    """Run the sweep in ``spec_path`` and publish its leaderboard.

    Args:
        spec_path: the sweep spec (YAML).
        experiment: the experiment name; defaults to the spec's ``name``. Reusing a name
            resumes that experiment.
        database: a SQLAlchemy URL; defaults to $EVALFLOW_DATABASE_URL or ~/.evalflow.
        simulated_time_scale: share of the simulated backend's latency really slept.
        chunk_size: generations per task; default sized from the work and the slots.
        level: "smoke" (3 cases per config, fails on any error), "subset" (a stratified
            20%) or "full"; each reuses what earlier levels generated.
        limit: only the first ``limit`` cases (of the level).
    """
    logger = get_run_logger()
    sweep = load_sweep(spec_path)
    name = experiment or sweep.spec.name
    engine = make_engine(database_url(database))

    limits = sweep.spec.limits
    stack = AsyncExitStack()
    backends = open_backends(sweep, simulated_time_scale=simulated_time_scale)
    try:
        # every model, embedding models too, before anything is written
        checks = await check_hosts(backends, sweep.required_models)
        experiment_id, pending = register(engine, sweep, name)
        cases = level_cases(sweep.suite.cases, level, suite=sweep.suite.name, limit=limit)
        pending = level_work(pending, cases)
        record_host_models(engine, checks)
        hosts = tuple(h for h in sweep.spec.hosts if checks[h.name].up)
        client = await stack.enter_async_context(get_client())
        limit_names = await size_limits(client, hosts)
        progress = await ProgressArtifact.create(
            artifact_key(name, "progress"), name, total=len(pending)
        )
        slots = await HostSlots.open(
            await stack.enter_async_context(slot_client()),
            limit_names,
            timeout_s=limits.first_request_timeout_s,
        )
        stack.push_async_callback(slots.close)
        context = GenerationContext(
            engine=engine,
            experiment_id=experiment_id,
            suite=sweep.suite,
            backends=backends,
            slots=slots,
            policy=RetryPolicy(max_attempts=limits.max_attempts),
            on_stored=progress.advance,
        )

        async def run(host, items):
            with tags(host_tag(host)):
                return await generate_chunk(host, quote(items), quote(context))

        started, started_cpu = time.perf_counter(), time.process_time()
        await slots.reserve(hosts)
        telemetry = stack.enter_context(
            RunTelemetry(GpuSampler(), backends, local=local_hosts(hosts))
        )
        report = await generate_level(
            engine,
            experiment_id,
            name,
            sweep,
            cases,
            pending,
            lambda items: dispatch(items, hosts, telemetry.wrap(run), chunk_size=chunk_size),
        )
        await progress.flush()
        generation_s = time.perf_counter() - started
        generation_cpu_s = time.process_time() - started_cpu
    finally:
        await asyncio.gather(*(b.aclose() for b in backends.values()))
        await stack.aclose()
    record_unservable(engine, experiment_id, report.unservable)
    record_telemetry(engine, experiment_id, telemetry.summary())
    if level == "smoke":
        check_smoke(engine, experiment_id, sweep, cases)
    logger.info(
        "generated %d, failed %d, could not run %d; model switches per host: %s",
        report.generated,
        report.failed,
        len(report.unservable),
        report.model_switches or "none",
    )
    score(engine, experiment_id, sweep.suite, sweep.metrics, sweep.spec.hosts)
    aggregate(engine, experiment_id, sweep.suite, sweep.metrics)
    publish(engine, experiment_id)
    comparison = compare_and_publish(engine, experiment_id)
    report_file = publish_report(engine, experiment_id, evalflow_home() / "reports")
    finish(engine, experiment_id, "completed")
    return {
        "experiment": name,
        "experiment_id": experiment_id,
        "generated": report.generated,
        "failed": report.failed + len(report.unservable),
        "skipped_already_done": len(sweep.work_items()) - len(pending),
        "simulated": sweep.simulated,
        "model_switches": report.model_switches,
        "hosts_down": report.hosts_down,
        "generation_s": round(generation_s, 3),
        "generation_cpu_s": round(generation_cpu_s, 3),
        "comparison": comparison["verdicts"],
        "report": str(report_file),
    }
