"""Levels and races inside the evaluate flow: which generations to run, round by round.

A race round is an ordinary generation batch through the same dispatch (host slots,
retries, resume); between rounds the stored scores decide who goes on
(``tasks.race.judge_race``)."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger
from sqlalchemy.engine import Engine

from evaluation.adaptive import smoke_failure
from evaluation.run import DispatchReport, Sweep, WorkItem
from evaluation.storage.db import session_scope
from evaluation.storage.repository import generations_frame
from evaluation.suites import Case
from tasks.host_pool import Batches, Send
from tasks.race import judge_race
from tasks.results import score


def race_batches(
    engine: Engine,
    experiment_id: int,
    experiment: str,
    sweep: Sweep,
    cases: Sequence[Case],
    pending: list[WorkItem],
    metrics: Sequence[str],
) -> Batches | None:
    """For a race, what ``generate_all`` runs instead of one dispatch: round after
    round, score what is stored on the run's ``metrics`` (``register``'s: the first is
    the one the race is judged on), judge, send the next round's missing work. None for
    the full grid."""
    if not sweep.spec.strategy.race:
        return None

    async def rounds(send: Send) -> DispatchReport:
        todo = {item.key for item in pending}
        by_hash = {c.hash: c for c in sweep.configs}
        by_id = {c.id: c for c in cases}
        reports: list[DispatchReport] = []
        published = 0
        while True:
            score(engine, experiment_id, sweep.suite, metrics, sweep.spec.hosts)
            race, plan = judge_race(
                engine, experiment_id, experiment, sweep, cases, metrics[0], published
            )
            published = len(race.rounds)
            if plan is None:
                break
            items = [
                WorkItem(by_hash[h], by_id[c], sweep.suite.name, s)
                for h in plan.configs
                for c in plan.cases
                for s in range(sweep.spec.samples_per_case)
            ]
            items = [item for item in items if item.key in todo]
            if not items:
                get_run_logger().warning(
                    "race round %d cannot be completed in this run (no host could run part "
                    "of it); rerun to resume",
                    plan.index + 1,
                )
                break
            todo -= {item.key for item in items}
            reports.append(await send(items))
            if reports[-1].deferred:  # a host overloaded: the run stops for a later one
                break
        return merge_reports(reports)

    return rounds


def merge_reports(reports: Sequence[DispatchReport]) -> DispatchReport:
    """One report for several dispatches (the rounds of a race)."""
    merged = DispatchReport(total=0)
    for r in reports:
        merged.total += r.total
        merged.generated += r.generated
        merged.failed += r.failed
        merged.chunks += r.chunks
        merged.unservable += r.unservable
        merged.hosts_down |= r.hosts_down
        merged.deferred += r.deferred
        merged.hosts_overloaded |= r.hosts_overloaded
        for field in ("model_switches", "items_per_host"):
            into = getattr(merged, field)
            for host, n in getattr(r, field).items():
                into[host] = into.get(host, 0) + n
    return merged


def check_smoke(
    engine: Engine, experiment_id: int, sweep: Sweep, cases: Sequence[Case], report: DispatchReport
) -> None:
    """Raise ``SmokeFailed`` (its causes grouped by host) when any generation failed."""
    ids = {c.id for c in cases}
    with session_scope(engine) as session:
        generations = generations_frame(session, experiment_id)
    generations = generations[generations["case_id"].isin(ids)]
    models = {c.hash: c.model for c in sweep.configs}
    if (failure := smoke_failure(generations, models, report.hosts_down)) is not None:
        raise failure
