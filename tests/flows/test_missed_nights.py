"""A night that `evalflow serve`'s stop left unrun (taken as it fell due, ended Crashed)
is handed to the next `serve`: created again at its own time, while it is still the
latest night due; an older one is said once and left."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

import deployments.serve as serve_module
from deployments.missed_nights import (
    HANDED_OVER,
    NOT_HANDED_OVER,
    hand_over,
    missed_nights,
    next_due,
    still_due,
)
from deployments.serve import LEFT_PENDING, LEFT_RUNNING, build_deployments
from tests.conftest import REPO

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"
NIGHT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the default nightly cron, 0 2 * * *
SUNDAY = datetime(2026, 11, 15, 4, 0, tzinfo=UTC)  # the default weekly, 0 4 * * 0


def run(due, message=LEFT_PENDING, run_count=0, tags=()):
    state = SimpleNamespace(message=message)
    return SimpleNamespace(
        expected_start_time=due, created=due, state=state, run_count=run_count, tags=list(tags)
    )


def test_a_missed_night_is_one_serve_left_unrun_and_none_handled_yet():
    ours = run(NIGHT)
    found = missed_nights(
        [
            run(NIGHT - timedelta(days=1)),
            ours,
            run(NIGHT, message=LEFT_RUNNING, run_count=1),  # ran: `evalflow status` resumes it
            run(NIGHT, message="Flow run infrastructure exited"),  # not serve's stop
            run(NIGHT, run_count=1),  # it ran after all
            run(NIGHT, tags=[HANDED_OVER]),
            run(NIGHT, tags=["evalflow", NOT_HANDED_OVER]),
        ],
        LEFT_PENDING,
    )
    assert [m.run for m in found] == [ours, found[1].run]  # the latest first
    assert found[1].due == NIGHT - timedelta(days=1)


def test_only_the_latest_missed_night_is_handed_over_until_the_next_falls_due():
    from prefect.schedules import Cron

    after = next_due(Cron("0 2 * * *", timezone="UTC"))
    assert after(NIGHT) == NIGHT + timedelta(days=1)
    paris = next_due(Cron("0 2 * * *", timezone="Europe/Paris"))
    assert paris(NIGHT) == datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # 02:00 in Paris
    missed = missed_nights([run(NIGHT), run(NIGHT - timedelta(days=2))], LEFT_PENDING)
    due, old = still_due(missed, after, NIGHT + timedelta(hours=23, minutes=59))
    assert due == missed[0] and old == [missed[1]]
    # a serve stopped for days: the next night fell due (and went unscheduled) since
    due, old = still_due(missed, after, NIGHT + timedelta(days=1))
    assert due is None and old == missed
    assert still_due([], after, NIGHT) == (None, [])


def _named_apart():
    """The served deployments under names of this test's own (the session's harness
    holds other tests' runs of the served ones)."""
    served = build_deployments(nightly_spec=DEMO)
    suffix = uuid.uuid4().hex[:8]
    for deployment in served:
        deployment.name = f"{deployment.name}-{suffix}"
    return served


@pytest.mark.usefixtures("prefect_harness", "unhurried_stop")
def test_the_next_serve_hands_over_a_night_a_stopped_serve_left_unrun():
    """Newcomers' M5: a SIGTERM to `serve` as the nightly fell due left it Crashed
    (serve's stop: "did not run"), and the next `serve` never ran that night: a hole in
    the series. The next `serve` creates it again, Scheduled at its own time (its runner
    takes a past one at once, Late, and the nightly keeps the night's date); once, even
    after a second stop before it ran. A missed weekly whose next week fell due since is
    said, not run."""
    from prefect.client.orchestration import get_client
    from prefect.states import Pending, Scheduled

    served = _named_apart()
    ids = {d.flow_name: d.apply() for d in served}

    async def taken_as_serve_stops(flow_name, due):
        """A run of the deployment due at ``due``, taken by the runner (Pending)."""
        async with get_client() as client:
            made = await client.create_flow_run_from_deployment(
                ids[flow_name], state=Scheduled(scheduled_time=due)
            )
            await client.set_flow_run_state(made.id, Pending(), force=True)
            return made

    async def read(flow_run_id):
        async with get_client() as client:
            return await client.read_flow_run(flow_run_id)

    async def hand_over_at(now):
        said, warned = [], []
        async with get_client() as client:
            made = await hand_over(
                client, served, LEFT_PENDING, said.append, warned.append, now=now
            )
        return made, said, warned

    since = datetime.now(UTC)
    night = asyncio.run(taken_as_serve_stops("nightly-regression", NIGHT))
    weekly = asyncio.run(taken_as_serve_stops("retrain-selector", SUNDAY))
    stopped: list[str] = []
    serve_module.pause_schedules(served, stopped.append, serving_since=since)  # serve's stop
    assert len(stopped) == 2 and all("did not run" in line for line in stopped)
    crashed = asyncio.run(read(night.id))
    assert crashed.state.type.value == "CRASHED" and crashed.run_count == 0
    assert crashed.start_time is not None  # set at the crash, though it never ran

    made, said, warned = asyncio.run(hand_over_at(NIGHT + timedelta(hours=3)))
    assert said == [
        f"handing over the nightly due 2026-11-28 02:00 UTC, left pending when serve stopped "
        f"(flow run {night.name!r}): it runs now, under its own date"
    ]
    assert warned == [
        "not handing over the weekly retraining due 2026-11-15 04:00 UTC, left pending when "
        "serve stopped: the next one, due 2026-11-22 04:00 UTC, fell due since (a missed run "
        "is handed over only until the next one falls due); start it from the UI or with "
        "`evalflow run` if it should still run"
    ]
    [again] = made
    again = asyncio.run(read(again.id))
    assert again.state.type.value == "SCHEDULED"
    assert again.expected_start_time == NIGHT  # what the nightly names its night by
    assert again.deployment_id == ids["nightly-regression"]
    assert again.parameters == crashed.parameters
    old, old_weekly = asyncio.run(read(night.id)), asyncio.run(read(weekly.id))
    assert old.state.type.value == "CRASHED" and HANDED_OVER in old.tags
    assert old_weekly.state.type.value == "CRASHED" and NOT_HANDED_OVER in old_weekly.tags

    # handled: the next serve says nothing of either
    assert asyncio.run(hand_over_at(NIGHT + timedelta(hours=4))) == ([], [], [])

    # stopped again as it took the handed-over night: the next serve hands it over again
    since = datetime.now(UTC)

    async def taken(flow_run_id):
        async with get_client() as client:
            await client.set_flow_run_state(flow_run_id, Pending(), force=True)

    asyncio.run(taken(again.id))
    serve_module.pause_schedules(served, stopped.append, serving_since=since)
    made, said, warned = asyncio.run(hand_over_at(NIGHT + timedelta(hours=5)))
    assert [asyncio.run(read(m.id)).expected_start_time for m in made] == [NIGHT]
    assert len(said) == 1 and not warned


def test_serve_hands_over_missed_nights_before_serving_on_a_server_that_outlives_it(
    monkeypatch,
):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    steps: list[str] = []
    monkeypatch.setattr(serve_module, "check_server", lambda deployments: _no_warnings())
    monkeypatch.setattr(
        serve_module, "hand_over_missed_nights", lambda d, say, warn: steps.append("hand over")
    )
    monkeypatch.setattr(serve_module, "serve", lambda *d, **_: steps.append("serve"))
    monkeypatch.setattr(serve_module, "pause_schedules", lambda *_, **__: steps.append("stop"))
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        serve_module.serve_all(print, nightly_spec=DEMO)
    assert steps == ["hand over", "serve", "stop"]
    steps.clear()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # the temporary API: none
        serve_module.serve_all(lambda line: None, nightly_spec=DEMO)
    assert steps == ["serve"]


def test_a_server_that_does_not_answer_the_hand_over_is_said_and_serving_goes_on(monkeypatch):
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setattr(serve_module, "HAND_OVER_TIMEOUT_S", 0.5)
    warned: list[str] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        with temporary_settings({PREFECT_API_URL: url}):
            serve_module.hand_over_missed_nights(_named_apart(), print, warned.append)
    assert warned == [
        "could not hand over the nights a stopped serve left unrun (no answer from the "
        "Prefect server within 0.5 s); the next `evalflow serve` tries again"
    ]


async def _no_warnings() -> list[str]:
    return []
