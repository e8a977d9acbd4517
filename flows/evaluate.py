"""The `evaluate` flow: load a sweep, generate on the host pool, score, aggregate,
compare and publish. Rerunning it with the same spec resumes where it stopped."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import State
from prefect.utilities.annotations import quote

from evaluation.adaptive import Level, level_cases, level_work
from evaluation.settings import database_url
from evaluation.storage.db import make_engine
from evaluation.wording import failed_words
from flows.adaptive import check_smoke, race_batches
from flows.deployed_console import deployed_errors_in_one_line
from flows.masked_errors import masked_errors
from flows.preload import preload_while_generating
from flows.run_names import evaluate_run_name
from tasks.adapters.run_labels import label_flow_run
from tasks.host_pool import generate_all, open_host_pool, stored_apart
from tasks.itembank import calibrated_level
from tasks.progress import announce_step
from tasks.results import aggregate, publish, score
from tasks.series import join_series, keep_series, record_calibrated, record_what_ran
from tasks.sweep import (
    cancel_run,
    defer_run,
    finish,
    load_sweep,
    record_host_models,
    record_outcome,
    record_unservable,
    register,
    store_view_pages,
)
from tasks.telemetry import record_telemetry

# see flows/preload.py; scoring first (pandas: not loaded before the first generation)
POST_GENERATION_MODULES = ("evaluation.run._scoring", "tasks.compare", "tasks.report")


@flow(
    name="evaluate",
    flow_run_name=evaluate_run_name,
    on_failure=[record_outcome],
    on_crashed=[record_outcome],
    on_cancellation=[record_outcome],
)
@masked_errors
async def evaluate(
    spec_path: str,
    experiment: str | None = None,
    database: str | None = None,
    simulated_time_scale: float = 0.0,
    chunk_size: int | None = None,
    level: Level | Literal["calibrated"] = "full",
    limit: int | None = None,
    series: str | None = None,
    cases: int | None = None,
    configs: list[str] | None = None,
    workers: int = 1,
) -> dict[str, Any] | State:
    """Run the sweep in ``spec_path`` and publish its leaderboard.

    Args:
        spec_path: the sweep spec (YAML).
        experiment: the experiment name; defaults to the spec's ``name``. Reusing a name
            resumes that experiment.
        database: a SQLAlchemy URL; defaults to $EVALFLOW_DATABASE_URL or ~/.evalflow.
        simulated_time_scale: each simulated call sleeps its latency × this; 0: × its
            host's own ``?time_scale=`` (0 without).
        chunk_size: generations per task; default sized from the work and the slots.
        level: "smoke" (3 cases per config, fails on any error), "subset" (a stratified
            20%) or "full"; each reuses what earlier levels generated.
        limit: only the first ``limit`` cases (of the level).
        series: the series this run joins; default: the spec's ``name``.
        cases: level "calibrated" (the first cases of the seeded stratified order, every
            score a full-suite estimate from the suite's item bank): how many (default 10%
            of the suite).
        configs: only these configs (hashes) generate what the level still lacks (a
            calibrated nightly's escalation: the configs that moved run the full suite).
        workers: generation lanes in this many processes (1: in this one); for hosts
            whose slots answer faster than one process can send (docs/throughput.md).
    """
    deployed_errors_in_one_line()
    sweep = load_sweep(spec_path)  # load: the spec, its suite and its configs
    name = experiment or sweep.spec.name
    await label_flow_run(
        experiment=name,
        series=series or sweep.spec.name,  # as evaluation/series names it
        task_type=sweep.suite.task_type,
        simulated=sweep.simulated,
    )
    engine = make_engine(database_url(database))
    # a rerun keeps its series and its spec (docs/trends.md, docs/specs-and-sweeps.md)
    keep_series(engine, name, series, sweep, named=bool(experiment))
    async with open_host_pool(sweep, simulated_time_scale=simulated_time_scale) as pool:
        cases = (  # ``cases``, the calibrated level's count, becomes the level's cases
            calibrated_level(engine, sweep, cases, name)[:limit]
            if level == "calibrated"
            else level_cases(sweep.cases, level, suite=sweep.suite.name, limit=limit)
        )
        experiment_id, metrics, pending = register(engine, sweep, name, cases, level, limit)
        if configs is not None:
            pending = [item for item in pending if item.config.hash in configs]
        join_series(engine, name, sweep, series)
        if level == "calibrated":  # the series watches on these cases (docs/trends.md)
            record_calibrated(engine, name, cases, len(sweep.suite.cases))
        in_level = len(level_work(sweep.work_items(), cases))
        skipped = in_level - len(pending)
        record_host_models(engine, pool.checks)
        preloading = preload_while_generating(  # while the hosts generate
            *POST_GENERATION_MODULES,
            beside_others=stored_apart(engine, workers),
        )
        announce_step(name, "generating", len(pending))
        try:
            generated = await generate_all(  # generate: on the hosts' slots, resumable
                engine,
                experiment_id,
                name,
                sweep,
                pool,
                pending,
                chunk_size=chunk_size,
                batches=race_batches(engine, experiment_id, name, sweep, cases, pending, metrics),
                workers=workers,
            )
        finally:
            if preloading is not None:
                preloading.cancel()  # not started: the stages import what they need
        del pending  # its work items: memory for the stages that read the whole run
        await record_what_ran(engine, name, sweep, pool, series)  # models still loaded
    if generated.cancelled:  # from the Prefect UI or API: stop here, resumable
        return cancel_run(engine, experiment_id)
    report = generated.report
    record_unservable(engine, experiment_id, report.unservable)
    if report.deferred:  # a host answered 503 to every try: interrupted, to resume later
        defer_run(engine, experiment_id, report)
    simulated_only = all(h.kind == "simulated" for h in sweep.spec.hosts)
    record_telemetry(engine, experiment_id, generated.gpu, simulated_only=simulated_only)
    if level == "smoke":
        check_smoke(engine, experiment_id, sweep, cases, report)
    get_run_logger().info(
        "generated %d, %s; model switches: %s",
        report.generated,
        failed_words(report.failed + len(report.unservable), len(report.unservable)),
        ", ".join(f"{n} on host {host}" for host, n in report.model_switches.items()) or "none",
    )
    announce_step(name, "scoring", engine=engine, stage="score")
    score(engine, experiment_id, sweep.suite, metrics, sweep.spec.hosts)
    aggregate(engine, experiment_id, sweep.suite, metrics)
    from evaluation.report.files import reports_folder
    from tasks.compare import compare_configs
    from tasks.report import publish_report

    publish(engine, experiment_id)
    announce_step(name, "comparing configs", engine=engine, stage="compare")
    comparison = compare_configs(engine, experiment_id)
    store_view_pages(engine, experiment_id, "completed")
    announce_step(name, "writing report", engine=engine, stage="report")
    report_file = publish_report(
        engine,
        experiment_id,
        reports_folder(),
        quote(comparison),
        ending_status="completed",
    )
    finish(engine, experiment_id, "completed")
    return {
        "experiment": name,
        "experiment_id": experiment_id,
        "generated": report.generated,
        "failed": report.failed + len(report.unservable),
        "never_answered": len(report.unservable),
        "skipped_already_done": skipped,
        "left_out_by_level": len(sweep.work_items()) - in_level,
        "simulated": sweep.simulated,
        "model_switches": report.model_switches,
        "hosts_down": report.hosts_down,
        "generation_s": round(generated.seconds, 3),
        "generation_cpu_s": round(generated.cpu_seconds, 3),
        "comparison": comparison.verdicts(),
        "report": str(report_file),
    }
