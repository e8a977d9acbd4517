"""Every Prefect client evalflow makes (tasks/adapters/prefect_client.py): a busy
server's answer sent again within a tenth of a second, not Prefect's 2 s, then 4 s; a
server busy for the whole budget named in one error. Counted on a stand-in transport
with the sleeps and the clock injected: no time passes."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from evaluation.errors import TryLater
from tasks.adapters.prefect_client import (
    BUSY_BUDGET_S,
    WAIT_CAP_S,
    PrefectBusy,
    busy_as_try_later,
    engine_client,
    prefect_client,
)
from tasks.adapters.slot_errors import SlotUnavailable, SlotWritesBusy
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
    N s": a run's slot write says it as ``SlotWritesBusy`` (a ``SlotUnavailable`` that
    is try later, exit 75: the run stops, interrupted, its case not failed)."""
    server, clock = _Busy(times=float("inf")), _Clock()

    async def main():
        async with _client(server, clock) as client:
            with pytest.raises(PrefectBusy, match=r"stayed busy for 120 s: GET /api/hello: 503"):
                await client.hello()
            sent = len(server.sent)
            writes = SlotWrites()
            with pytest.raises(
                SlotWritesBusy,
                match=r"^the Prefect API stayed busy for 120 s: POST "
                r"/api/v2/concurrency_limits/increment: 503 \(at http://prefect.invalid\); "
                r"run the same command again when it answers$",
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
    assert issubclass(SlotWritesBusy, SlotUnavailable)  # and the slots' (renewals, dead runs')
    assert issubclass(SlotWritesBusy, TryLater)


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


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_the_engines_client_context_is_prefects_own_with_evalflows_client(sync):
    """``engine_client`` makes Prefect's client context with ``model_construct`` (its
    constructor would make a client of Prefect's own): that holds while the installed
    Prefect's ``AsyncClientContext``/``SyncClientContext`` has ``client`` as its one
    field, its constructor sets nothing else but its private attributes' defaults
    (``_httpx_settings`` None), and Prefect's ``get_client()`` inside the entered context
    hands out the context's client (the flow's task runs then send through evalflow's,
    not a client each). An upgrade of Prefect that changes any of these fails here."""
    import prefect
    from prefect.client.orchestration import get_client
    from prefect.context import AsyncClientContext, SyncClientContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def answer(request: httpx.Request) -> httpx.Response:  # Prefect's version check
        return httpx.Response(200, json=prefect.__version__)

    kind = SyncClientContext if sync else AsyncClientContext
    change = (
        f"Prefect {prefect.__version__}'s {kind.__name__} is not what "
        "tasks/adapters/prefect_client.engine_client assumes (Prefect 3.8's): make the "
        "context as its constructor now does, with evalflow's client"
    )
    with temporary_settings(updates={PREFECT_API_URL: URL}):
        prefects = kind()  # a client of Prefect's settings: made, nothing sent
        ours = engine_client(sync=sync, inner=httpx.MockTransport(answer))
        assert set(kind.model_fields) == {"client"}, change
        assert ours.__pydantic_private__ == prefects.__pydantic_private__, change
        if sync:
            with ours as context:
                handed_out = get_client(sync_client=True)
        else:

            async def entered():
                async with ours as context:
                    return get_client(), context

            handed_out, context = asyncio.run(entered())
    assert handed_out is context.client and type(handed_out) is type(prefects.client), change


def test_a_busy_answer_a_prefect_client_raised_from_is_try_later():
    """Prefect's client says a version check answered busy for the whole budget as
    "RuntimeError: Failed to reach API at URL", raised from the ``PrefectBusy``: it is a
    refusal for now (exit 75) all the same; any other error is not."""
    request = httpx.Request("GET", "http://user:secret@prefect.invalid:4200/api/admin/version")
    busy = PrefectBusy("the Prefect API stayed busy for 120 s: GET /api/admin/version: 503")
    busy.request = request
    try:
        try:
            raise busy
        except PrefectBusy as exc:
            raise RuntimeError("Failed to reach API at http://prefect.invalid:4200/api/") from exc
    except RuntimeError as exc:
        later = busy_as_try_later(exc)
    assert isinstance(later, TryLater)
    assert str(later) == (
        "the Prefect API stayed busy for 120 s: GET /api/admin/version: 503 (at "
        "http://prefect.invalid:4200); run the same command again when it answers"
    )
    assert busy_as_try_later(RuntimeError("Failed to reach API")) is None


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("argv", [["rescore", "busy"], ["compare", "busy", "--publish"]])
def test_a_command_running_a_sync_flow_on_an_api_busy_for_the_whole_budget_tries_later(
    argv, database_url, monkeypatch, capsys
):
    """`compare --publish`, `rescore` and `retrain` (``prefect_api``) on a Prefect API
    that answers busy for the whole budget (120 s, on the test's clock): one line, exit
    75 (try later), as `run`'s refusal of a busy API; it was exit 1, "evalflow failed:
    RuntimeError: Failed to reach API at URL" (Prefect's version check) or "PrefectBusy"."""
    import functools

    import tasks.adapters.prefect_client as module
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main
    from tests.support.results_db import add_experiment, make_config, make_suite

    engine = make_engine(database_url)
    with session_scope(engine) as session:
        scores = {make_config(temperature=t): {"exact_match": [1.0, 0.0, 1.0]} for t in (0, 1)}
        add_experiment(session, "busy", make_suite(3), scores)
    engine.dispose()
    clock, sent = _Clock(), []

    def busy(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(503, json={"exception_message": "database is locked"})

    hooks = {"sleep": clock.sleep_sync, "clock": clock, "jitter": lambda: 1.0}
    busy_client = functools.partial(module.engine_client, inner=httpx.MockTransport(busy), **hooks)
    monkeypatch.setattr(module, "engine_client", busy_client)
    assert main(["--database", database_url, *argv]) == 75
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"error: the Prefect API stayed busy for 120 s: (GET|POST) /api/\S+: 503 \(at "
        r"http://[\w.]+:\d+\); run the same command again when it answers\n",
        err,
    ), err
    assert BUSY_BUDGET_S - WAIT_CAP_S <= sum(clock.slept) <= BUSY_BUDGET_S
