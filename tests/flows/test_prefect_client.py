"""Every Prefect client evalflow makes (tasks/adapters/prefect_client.py): a busy
server's answer sent again within a tenth of a second, not Prefect's 2 s, then 4 s; a
server busy for the whole budget named in one error. Counted on a stand-in transport
with the sleeps and the clock injected: no time passes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tasks.adapters.prefect_client import (
    BUSY_BUDGET_S,
    WAIT_CAP_S,
    PrefectBusy,
    engine_client,
    prefect_client,
)
from tasks.adapters.slot_errors import SlotUnavailable
from tasks.adapters.slot_writes import SlotWrites

URL = "http://prefect.invalid/api"


class _Busy:
    """A Prefect server that answers ``busy`` (503) ``times`` times, then 200."""

    def __init__(self, times: float, busy: httpx.Response | None = None) -> None:
        self.times = times
        self.busy = busy or httpx.Response(503, json={"exception_message": "busy"})
        self.sent: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/csrf-token"):  # as a server without CSRF answers
            return httpx.Response(422, json={"detail": "CSRF protection is disabled."})
        self.sent.append((request.method, request.url.path))
        if len(self.sent) <= self.times:
            return self.busy
        return httpx.Response(200, json={"ok": True})


class _Clock:
    """A clock that sleeping moves on (no real time passes)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep_sync(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleep_sync(seconds)


def _client(server, clock: _Clock, **options):
    return prefect_client(
        api_url=URL,
        inner=httpx.MockTransport(server),
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 1.0,
        **options,
    )


def test_a_busy_answer_is_sent_again_within_a_fifth_of_a_second_not_two_seconds():
    """Prefect's client (and so every state write, slot write, pause, health check
    evalflow sent) waited 2 s after a busy answer, then 4 s: two busy answers cost 6 s.
    Now 0.05 s, then 0.1 s, and Prefect's client never sees them."""
    server, clock = _Busy(times=2), _Clock()
    busy: list[str] = []

    async def main():
        async with _client(server, clock, on_busy=busy.append) as client:
            return await client.hello()

    assert asyncio.run(main()).json() == {"ok": True}
    assert server.sent == [("GET", "/api/hello")] * 3
    assert clock.slept == [0.05, 0.1] and sum(clock.slept) < 0.2
    assert busy == ["503", "503"]


def test_a_write_too_is_sent_again_with_its_body_and_the_sync_client_alike():
    """A write (its JSON body sent again as it was) on the async client, and the sync
    client (crashed runs, the metrics' readings, slots given back at exit)."""
    server, clock = _Busy(times=1), _Clock()
    bodies: list[bytes] = []

    def noting(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            bodies.append(request.content)
        return server(request)

    async def main():
        async with prefect_client(
            api_url=URL, inner=httpx.MockTransport(noting), sleep=clock.sleep, clock=clock
        ) as client:
            await client.increment_concurrency_slots(names=["l"], slots=2, mode="concurrency")

    asyncio.run(main())
    assert len(bodies) == 2 and bodies[0] == bodies[1] and b'"slots":2' in bodies[0]

    server, clock = _Busy(times=3), _Clock()
    with prefect_client(
        sync=True,
        api_url=URL,
        inner=httpx.MockTransport(server),
        sleep=clock.sleep_sync,
        clock=clock,
        jitter=lambda: 1.0,
    ) as client:
        assert client.hello().json() == {"ok": True}
    assert clock.slept == [0.05, 0.1, 0.2]


def test_a_server_that_asks_for_a_wait_gets_it():
    """Retry-After (a rate limit, the embedded server's own short one) is what is waited."""
    server = _Busy(times=1, busy=httpx.Response(429, headers={"Retry-After": "3"}))
    clock = _Clock()

    async def main():
        async with _client(server, clock) as client:
            return await client.hello()

    assert asyncio.run(main()).status_code == 200
    assert clock.slept == [3.0]


def test_a_server_busy_for_the_whole_budget_is_one_clear_error_and_a_slot_write_says_so():
    """Asked again at least once every ``WAIT_CAP_S`` for the budget (a minute's busy
    spell of Prefect's SQLite is waited out), then "the Prefect API stayed busy for
    N s": a run's slot write says it as ``SlotUnavailable`` (try later, exit 75)."""
    server, clock = _Busy(times=float("inf")), _Clock()

    async def main():
        async with _client(server, clock) as client:
            with pytest.raises(PrefectBusy, match=r"stayed busy for 120 s: GET /api/hello: 503"):
                await client.hello()
            sent = len(server.sent)
            writes = SlotWrites()
            with pytest.raises(
                SlotUnavailable,
                match=r"^the Prefect API stayed busy for 120 s: POST "
                r"/api/v2/concurrency_limits/increment: 503$",
            ):
                await writes.write(
                    lambda: client.increment_concurrency_slots(
                        names=["l"], slots=1, mode="concurrency"
                    )
                )
            return sent

    sent = asyncio.run(main())
    assert max(clock.slept) == WAIT_CAP_S
    assert BUSY_BUDGET_S - 2 * WAIT_CAP_S <= sum(clock.slept) / 2 <= BUSY_BUDGET_S
    assert sent == len(server.sent) / 2 > 100  # not 6 tries (Prefect: 2 + 4 + ... 32 s)
    assert issubclass(PrefectBusy, httpx.HTTPError)  # callers that tolerate the API's errors


def test_a_dropped_connection_is_sent_again_soon_too():
    """A busy local server that resets the connection: sent again after 0.05 s."""
    clock, tries = _Clock(), []

    def resetting(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        if len(tries) == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json={})

    async def main():
        async with _client(resetting, clock) as client:
            await client.hello()

    asyncio.run(main())
    assert len(tries) == 2 and clock.slept == [0.05]


@pytest.mark.usefixtures("prefect_harness")
def test_the_engines_own_state_writes_are_sent_again_soon_too():
    """A flow run's states are written by Prefect's engine through a client it makes
    itself, and no Prefect setting shortens its waits: under ``engine_client`` (`run`'s
    flow) it takes evalflow's, so its running state answered busy twice is sent again
    after 0.05 s and 0.1 s, not 2 s then 4 s (Prefect's own client's, above), and the
    flow run ends completed. The busy answers come from a stand-in in front of the
    test's Prefect server."""
    from prefect import flow

    clock, busy = _Clock(), []
    server = httpx.AsyncHTTPTransport()

    class _StateWritesBusy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/set_state") and len(busy) < 2:
                busy.append(request.url.path)
                return httpx.Response(503, json={"exception_message": "database is locked"})
            return await server.handle_async_request(request)

    @flow(name="states-sent-soon", persist_result=False)
    async def states_sent_soon() -> int:
        return 7

    async def main():
        async with engine_client(
            inner=_StateWritesBusy(), sleep=clock.sleep, clock=clock, jitter=lambda: 1.0
        ):
            return await states_sent_soon(return_state=True)

    state = asyncio.run(main())
    assert state.is_completed() and state.result() == 7
    assert len(busy) == 2 and clock.slept == [0.05, 0.1]


@pytest.mark.usefixtures("prefect_harness")
def test_a_sync_flows_state_writes_are_sent_again_soon_too():
    """`compare --publish`, `rescore` and `retrain` run flows of plain functions, whose
    states Prefect's sync engine writes through a client of its own (2 s, then 4 s, on
    a busy answer): under ``engine_client(sync=True)`` (``prefect_api``, which those
    commands enter) it takes evalflow's, so its running state answered busy twice is sent
    again after 0.05 s and 0.1 s, and the flow run ends completed."""
    from prefect import flow

    clock, busy = _Clock(), []
    server = httpx.HTTPTransport()

    class _StateWritesBusy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/set_state") and len(busy) < 2:
                busy.append(request.url.path)
                return httpx.Response(503, json={"exception_message": "database is locked"})
            return server.handle_request(request)

    @flow(name="sync-states-sent-soon", persist_result=False)
    def states_sent_soon() -> int:
        return 7

    hooks = {"sleep": clock.sleep_sync, "clock": clock, "jitter": lambda: 1.0}
    with engine_client(sync=True, inner=_StateWritesBusy(), **hooks):
        state = states_sent_soon(return_state=True)
    assert state.is_completed() and state.result() == 7
    assert len(busy) == 2 and clock.slept == [0.05, 0.1]


@pytest.mark.usefixtures("prefect_harness")
def test_the_commands_that_run_a_sync_flow_hold_evalflows_client_while_it_runs():
    """``prefect_api``, which `compare --publish`, `rescore` and `retrain` enter around
    their flow, holds the sync client context (evalflow's client) and leaves it after."""
    from prefect.context import SyncClientContext

    from flows.run_control import prefect_api

    assert SyncClientContext.get() is None
    with prefect_api():
        client = SyncClientContext.get().client
        assert type(client._client._transport).__name__ == "SyncBusyRetry"
    assert SyncClientContext.get() is None
