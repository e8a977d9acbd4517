"""A scheduled night that `evalflow serve`'s stop left unrun, handed to the next `serve`.

A SIGTERM or Ctrl-C as a night fell due catches its flow run taken but not started:
serve's stop ends it Crashed with ``LEFT_PENDING`` (``deployments.serve``), and Prefect
never schedules a night again, so the series had a hole. The next `serve`, before it
serves, creates each such night again as a Scheduled flow run of the same deployment at
the night's own time, with the same parameters: its runner takes it on its first poll
(late: it starts at once), and the nightly, named after the time it was scheduled for
(``flows.nightly``), keeps the missed night's date.

How far back: a missed night is handed over until the schedule's next night falls due
(one schedule interval), so the nights still run in their order and a `serve` stopped
for a week does not run seven at once (it ran none: those nights were never scheduled).
An older one is said in one line per deployment, once, and left for the UI or `evalflow
run`.

A missed night is found by its message (and ``run_count == 0``: Prefect set its start
time at the crash though it never ran); once handled it is tagged, so a second stop
before the replacement runs does not make the next `serve` create it twice (and the
replacement's idempotency key, the missed run's id, makes a second creation return the
first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Tags on a missed night once handled: handed over, or too old to be.
HANDED_OVER = "evalflow:handed-over"
NOT_HANDED_OVER = "evalflow:missed"
#: What each scheduled deployment's runs are called in serve's lines.
WHAT = {"nightly-regression": "the nightly", "retrain-selector": "the weekly retraining"}
#: How many of a deployment's latest Crashed runs are read for missed nights.
READ_AT_MOST = 50


@dataclass(frozen=True)
class Missed:
    """A missed night of one deployment: ``run`` (Prefect's flow run) due at ``due``."""

    run: Any
    due: datetime


def missed_nights(runs: Sequence[Any], left_pending: str) -> list[Missed]:
    """The runs (Crashed ones of one deployment) that serve's stop ended before they
    started (``left_pending``: its message) and that no `serve` handled yet; latest due
    first."""
    missed = [
        Missed(run, (run.expected_start_time or run.created).astimezone(UTC))
        for run in runs
        if run.state is not None
        and run.state.message == left_pending
        and run.run_count == 0
        and not {HANDED_OVER, NOT_HANDED_OVER} & set(run.tags or ())
    ]
    return sorted(missed, key=lambda m: m.due, reverse=True)


def still_due(
    missed: Sequence[Missed], next_due: Callable[[datetime], datetime], now: datetime
) -> tuple[Missed | None, list[Missed]]:
    """Which of ``missed`` (latest first) to hand over, and which not: the latest, while
    the schedule's next night after it (``next_due``) has not fallen due by ``now``; every
    other one is too old."""
    if missed and now < next_due(missed[0].due):
        return missed[0], list(missed[1:])
    return None, list(missed)


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def handing_over_words(flow_name: str, missed: Missed) -> str:
    what = WHAT.get(flow_name, f"the {flow_name} run")
    return (
        f"handing over {what} due {when(missed.due)}, left pending when serve stopped "
        f"(flow run {missed.run.name!r}): it runs now, under its own date"
    )


def too_old_words(flow_name: str, old: Sequence[Missed], next_due: datetime) -> str:
    what = WHAT.get(flow_name, f"the {flow_name} run")
    earlier = f" (and {len(old) - 1} earlier)" if len(old) > 1 else ""
    return (
        f"not handing over {what} due {when(old[0].due)}{earlier}, left pending when serve "
        f"stopped: the next one, due {when(next_due)}, fell due since (a missed run is handed "
        "over only until the next one falls due); start it from the UI or with `evalflow run` "
        "if it should still run"
    )


def next_due(schedule: Any) -> Callable[[datetime], datetime]:
    """The first time after a given one that ``schedule`` (a deployment's Cron schedule)
    falls due, computed as Prefect's scheduler computes it."""
    from datetime import timedelta

    from prefect.server.schemas.schedules import CronSchedule

    cron = CronSchedule(cron=schedule.cron, timezone=schedule.timezone, day_or=schedule.day_or)

    def after(at: datetime) -> datetime:
        dates = cron._get_dates_generator(n=1, start=at + timedelta(seconds=1))
        return next(iter(dates)).astimezone(UTC)

    return after


async def hand_over(
    client: Any,
    deployments: Sequence[Any],
    left_pending: str,
    say: Callable[[str], None],
    warn: Callable[[str], None],
    *,
    now: datetime | None = None,
) -> list[Any]:
    """Hand over the missed nights of ``deployments`` (RunnerDeployments, those with a
    Cron schedule) on the server ``client`` talks to: each still due is created again as
    a Scheduled flow run at its own time (said to ``say``), an older one is said to
    ``warn``; each is tagged as handled. Returns the flow runs created. A deployment not
    on the server yet has nothing to hand over."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Scheduled

    now = now or datetime.now(UTC)
    created = []
    for deployment in deployments:
        schedules = [s.schedule for s in deployment.schedules or () if hasattr(s.schedule, "cron")]
        if not schedules:
            continue
        try:
            stored = await client.read_deployment_by_name(
                f"{deployment.flow_name}/{deployment.name}"
            )
        except ObjectNotFound:
            continue
        crashed = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[stored.id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=READ_AT_MOST,
        )
        after = next_due(schedules[0])
        due, old = still_due(missed_nights(crashed, left_pending), after, now)
        if due is not None:
            say(handing_over_words(deployment.flow_name, due))
            created.append(
                await client.create_flow_run_from_deployment(
                    stored.id,
                    parameters=due.run.parameters,
                    state=Scheduled(scheduled_time=due.due),
                    tags=[f"handed-over:{due.run.name}"],
                    idempotency_key=f"evalflow-handed-over-{due.run.id}",
                )
            )
            await client.update_flow_run(due.run.id, tags=[*due.run.tags, HANDED_OVER])
        if old:
            warn(too_old_words(deployment.flow_name, old, after(old[0].due)))
            for missed in old:
                await client.update_flow_run(
                    missed.run.id, tags=[*missed.run.tags, NOT_HANDED_OVER]
                )
    return created
