"""Tasks that load a sweep and register it in the results database."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import NoReturn

from prefect import Flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Cancelled, State
from sqlalchemy.engine import Engine

from evaluation.adaptive import level_work
from evaluation.errors import EvalError, HostsOverloaded
from evaluation.monitor import set_stage, store_summary
from evaluation.redact import one_line, urls_given
from evaluation.run._dispatch import DispatchReport, Unservable
from evaluation.run._heap import release_freed
from evaluation.run._preflight import HostCheck
from evaluation.run._sweep import Sweep, prepare_sweep
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.settings import database_url, sqlite_file
from evaluation.storage.db import make_engine, refresh_planner_facts, session_scope
from evaluation.storage.dropped import dropped_configs
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    completed_count,
    completed_keys,
    record_models,
    record_suite,
    register_experiment,
    save_generations,
)
from evaluation.storage.runs import (
    CANCELLED_REASON,
    RunProcess,
    claim_experiment,
    end_flow_run,
    end_run,
    ending_of,
    failure_reason,
    record_level,
)
from evaluation.suites import Case
from evaluation.wording import ON_THE_DISPLAY, counted
from tasks.adapters.crashed_runs import mark_crashed
from tasks.adapters.prefect_client import busy_as_try_later


@task(name="load-sweep", cache_policy=NO_CACHE)
def load_sweep(spec_path: str) -> Sweep:
    """Read the spec and its suite and expand the configs; refuses bad input up front."""
    return prepare_sweep(spec_path)


@task(name="register-experiment", cache_policy=NO_CACHE)
def register(
    engine: Engine,
    sweep: Sweep,
    experiment: str,
    cases: Sequence[Case],
    level: str = "full",
    limit: int | None = None,
) -> tuple[int, tuple[str, ...], list[WorkItem]]:
    """Claim the experiment for this run (refused while another live process runs it),
    record its level, store the suite, experiment and configs; return its id, the metrics
    to score (the spec's and any a rescore added) and the work on ``cases`` (the level's,
    within any limit) not yet done (resume), and say how much of it is stored."""
    every = len(sweep.suite.cases)  # as `run`'s first line says it: "12 cases of 36"
    get_run_logger().info(
        "sweep %s: %s × %s%s × %s on %s%s",
        sweep.spec.name,
        counted(len(sweep.configs), "config"),
        counted(len(cases), "case"),
        f" of {every}" if len(cases) < every else "",
        counted(sweep.spec.samples_per_case, "sample"),
        counted(len(sweep.spec.hosts), "host"),
        " [SIMULATED backend]" if sweep.simulated else "",
    )
    with session_scope(engine) as session:
        dead = claim_experiment(
            session,
            experiment,
            RunProcess.current(),
            flow_run_id=current_flow_run.get_id(),
            task_type=sweep.suite.task_type,
            simulated=sweep.simulated,
        )
        record_level(session, experiment, level, limit)
    set_stage(engine, experiment, "load", started=True)  # the monitor's live row
    with session_scope(engine) as session:
        record_suite(session, sweep.suite)
        row = register_experiment(
            session,
            name=experiment,
            suite=sweep.suite,
            configs=sweep.configs,
            spec=_spec_summary(sweep),
            # absolute: `show`'s resume command where no command line was stored
            spec_path=str(sweep.spec.path.absolute()) if sweep.spec.path else "",
            samples_per_case=sweep.spec.samples_per_case,
            metrics=sweep.metrics,
            simulated=sweep.simulated,
            baseline=sweep.spec.baseline,
        )
        done = completed_keys(session, row.id)
        dropped = dropped_configs(session, row.id)
        metrics = tuple(row.metrics)
    added = [m for m in metrics if m not in sweep.metrics]
    if added:  # a rescore's: kept, and scored on what this run generates
        get_run_logger().info(
            "%s: also scored on %s (added by `evalflow rescore`, not in this spec)",
            experiment,
            ", ".join(added),
        )
    if dropped:  # a spec edited under the same name: said before anything is generated
        get_run_logger().warning(
            "%s: %s that this spec no longer has: left out of this run's leaderboard, "
            "comparison and report (and of show, compare, view and export); kept stored, "
            "and back, without generating them again, when a spec has them",
            experiment,
            dropped.words(),
        )
    mark_crashed(dead)  # a dead run's flow run, taken over here (a deployment's run)
    pending = level_work(sweep.work_items(done), cases)
    stored = len(level_work(sweep.work_items(), cases)) - len(pending)
    if stored:
        get_run_logger().info(
            "resuming %s: %s already stored, %d to go",
            experiment,
            counted(stored, "generation"),
            len(pending),
        )
    return row.id, metrics, pending


def _spec_summary(sweep: Sweep) -> dict:
    spec = sweep.spec
    return {
        "name": spec.name,
        "suite": str(spec.suite),
        "models": list(spec.models),
        "grid": {k: list(v) for k, v in spec.grid.items()},
        "templates": {t.name: t.text for t in spec.templates},
        "hosts": [asdict(h) for h in spec.hosts],
        "samples_per_case": spec.samples_per_case,
        "metrics": list(sweep.metrics),
        **({"cases": list(spec.cases)} if spec.cases else {}),
    }


@task(name="record-models", cache_policy=NO_CACHE)
def record_host_models(engine: Engine, checks: Mapping[str, HostCheck]) -> None:
    with session_scope(engine) as session:
        for host, check in checks.items():
            record_models(session, host, check.models.values())


@task(name="record-unservable", cache_policy=NO_CACHE)
def record_unservable(engine: Engine, experiment_id: int, unservable: list[Unservable]) -> None:
    """Items no live host could take are stored as failed with the reason, under the
    host that went down and as ``BackendUnavailable`` (the metrics' labels); a rerun
    picks them up."""
    records = [GenerationRecord(u.item, u.host, 0, error=u.error) for u in unservable]
    with session_scope(engine) as session:
        save_generations(session, experiment_id, records)
    if records:
        get_run_logger().warning(
            "%s, never answered: %s",
            counted(len(records), "generation") + " failed",
            unservable[0].reason,
            extra={ON_THE_DISPLAY: True},
        )


@task(name="store-view-pages", cache_policy=NO_CACHE)
def store_view_pages(engine: Engine, experiment_id: int, ending_status: str | None = None) -> None:
    """Bring the database's planner facts up to date, then store the view's summary and
    flip matrix as the run will end (``ending_status``; None: as it is, after a rescore;
    computed once here rather than
    on the view's first request: seconds at a million generations). Before the report:
    its matplotlib stays loaded once drawn, and these pages' frames stacked on it."""
    refresh_planner_facts(engine)
    from evaluation.view.stored import store_pages  # pandas and the statistics: not at start

    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        store_pages(session, name, ending=ending_status)
    release_freed()  # the pages' frames back to the system (evaluation/run/_heap.py)


@task(name="finish-experiment", cache_policy=NO_CACHE)
def finish(engine: Engine, experiment_id: int, status: str) -> None:
    """End the run and store its summary for the monitor (its view pages are stored:
    ``store_view_pages``)."""
    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        end_run(session, name, status, RunProcess.current())
        # the end stored before the summary is counted, holding no write lock meanwhile;
        # a summary not stored is counted again by the monitor (its status differs)
        session.commit()
        store_summary(session, experiment_id)  # the monitor's recent runs and series


def cancel_run(engine: Engine, experiment_id: int) -> State:
    """End a run whose flow run was cancelled while it generated: the experiment is
    ``cancelled`` (what is stored stays; a rerun resumes) and the flow run Cancelled.
    Not a task: the server refuses new task runs of a flow run that is cancelling."""
    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        end_run(session, name, "cancelled", RunProcess.current(), reason=CANCELLED_REASON)
        kept = completed_count(session, experiment_id)
    get_run_logger().warning(
        "%s cancelled: %s kept; rerun to resume", name, counted(kept, "generation")
    )
    return Cancelled(message=f"{name}: {CANCELLED_REASON}; rerun to resume")


def defer_run(engine: Engine, experiment_id: int, report: DispatchReport) -> NoReturn:
    """End a run a host stopped by answering 503 (overloaded) to every try of a
    generation, where no other host took its work (``report.deferred``): the experiment
    is ``interrupted`` (what is stored stays; the same command resumes it) and
    ``HostsOverloaded`` says why (exit 75: try later). Not failed: nothing was lost."""
    hosts = "; ".join(report.hosts_overloaded.values())
    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        kept = completed_count(session, experiment_id)
        reason = (
            f"{hosts}; the run stopped: {counted(kept, 'generation')} stored, "
            f"{len(report.deferred)} left for later, nothing lost"
        )
        end_run(session, name, "interrupted", RunProcess.current(), reason=reason)
    raise HostsOverloaded(reason)


_EXCEPTION_PREFIX = "Flow run encountered an exception: "


def record_outcome(flow: Flow, flow_run: FlowRun, state: State) -> None:
    """Flow state hook: a failed, crashed or cancelled run ends its experiment's run as
    failed (with the error), cancelled (a worker or runner killed it on a cancel from
    the UI) or interrupted, wherever the flow ran. One its Prefect API stopped (busy for
    the whole budget: Prefect's client raised from ``PrefectBusy``) is interrupted."""
    raised = getattr(state.data, "result", state.data)  # in a ResultRecord, or itself
    if isinstance(raised, BaseException):
        raised = busy_as_try_later(raised) or raised
    if state.is_failed():
        status = ending_of(raised if isinstance(raised, BaseException) else None)
    elif state.is_cancelling() or state.is_cancelled():
        status = "cancelled"
    else:
        status = "interrupted"
    known = urls_given([], os.environ)  # the URLs this process was given, found verbatim too
    if isinstance(raised, EvalError):  # its message, not its class name (`SmokeFailed: `)
        reason: str | None = failure_reason(raised, known)
    else:
        reason = (state.message or state.name or "").removeprefix(_EXCEPTION_PREFIX) or None
        reason = one_line(reason, known=known) if reason else None
    url = database_url(flow_run.parameters.get("database"))
    if (path := sqlite_file(url, uri_filename=True)) is not None and not path.exists():
        return  # it failed before it opened the database (a spec it could not read)
    engine = make_engine(url, create=False)
    try:
        with session_scope(engine) as session:
            end_flow_run(session, str(flow_run.id), status, reason)
    finally:
        engine.dispose()
