"""A lane worker's slot calls without Prefect (tasks/adapters/slot_api.py): the headers
Prefect's client would send under the same settings, and its answers to a busy, a
limiting and a CSRF-protected server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_KEY,
    PREFECT_CLIENT_CUSTOM_HEADERS,
    temporary_settings,
)

from tasks.adapters import prefect_client, slot_api
from tasks.adapters.slot_api import SlotApi, SlotApiSettings, slot_api_settings

URL = "http://prefect.invalid/api"
SENT = ("User-Agent", "X-PREFECT-API-VERSION", "Authorization", "X-Team")


@pytest.mark.parametrize(
    "updates",
    [
        {},
        {PREFECT_API_KEY: "pnu_secret"},
        {PREFECT_API_KEY: "pnu_secret", PREFECT_API_AUTH_STRING: "admin:pass"},
        {PREFECT_CLIENT_CUSTOM_HEADERS: {"X-Team": "evals", "User-Agent": "mine"}},
    ],
)
def test_a_worker_sends_the_headers_prefects_client_sends(updates):
    with temporary_settings(updates=updates):
        client = PrefectClient(
            URL,
            api_key=PREFECT_API_KEY.value(),
            auth_string=PREFECT_API_AUTH_STRING.value(),
        )
        settings = slot_api_settings(client)
        prefects = {k: client._client.headers.get(k) for k in SENT}
    assert settings.url == str(client.api_url)  # the registry folder its runs share
    assert {k: settings.headers.get(k) for k in SENT} == prefects


class _Server:
    """Answers in turn, each request noted."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)


def _calls(server: _Server, call, **settings) -> object:
    async def main():
        api = SlotApi(SlotApiSettings(URL, **settings), transport=httpx.MockTransport(server))
        async with api:
            return await call(api)

    return asyncio.run(main())


def test_a_busy_server_is_asked_again_soon_and_a_limiting_one_waited_for(monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(slot_api.asyncio, "sleep", sleep)
    monkeypatch.setattr(prefect_client, "_jitter", lambda: 1.0)
    busy = _Server(httpx.Response(503), httpx.Response(503), httpx.Response(200, json=[]))
    _calls(busy, lambda api: api.increment_concurrency_slots(["l"], 2, "concurrency"))
    # sent again after 0.05 s, then 0.1 s (Prefect's client: 2 s, then 4 s)
    assert len(busy.requests) == 3 and slept == [0.05, 0.1]
    slept.clear()

    limiting = _Server(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json=[{"name": "l"}]),
    )
    answer = _calls(limiting, lambda api: api.increment_concurrency_slots(["l"], 2, "concurrency"))
    assert answer.json() == [{"name": "l"}] and slept == [3.0]
    sent = limiting.requests[-1]
    assert sent.url.path == "/api/v2/concurrency_limits/increment"
    assert json.loads(sent.content) == {"names": ["l"], "slots": 2, "mode": "concurrency"}

    full = _Server(httpx.Response(423, headers={"Retry-After": "0.5"}))
    with pytest.raises(httpx.HTTPStatusError) as raised:  # HostSlots reads it: limit full
        _calls(full, lambda api: api.increment_concurrency_slots(["l"], 1, "concurrency"))
    assert raised.value.response.status_code == 423


def test_writes_carry_a_csrf_token_where_the_server_asks_for_one():
    token = {"token": "t0k", "client": "c", "expiration": "2099-01-01T00:00:00Z"}
    protected = _Server(httpx.Response(200, json=token), httpx.Response(200, json={}))
    _calls(protected, lambda api: api.release_concurrency_slots_with_lease("L"), csrf=True)
    fetch, write = protected.requests
    assert fetch.url.path == "/api/csrf-token"
    assert write.headers["Prefect-Csrf-Token"] == "t0k"
    assert write.headers["Prefect-Csrf-Client"] == fetch.url.params["client"]
    assert json.loads(write.content) == {"lease_id": "L"}

    unprotected = _Server(
        httpx.Response(422, json={"detail": "CSRF protection is disabled."}),
        httpx.Response(200, json={}),
        httpx.Response(200, json={}),
    )

    async def twice(api):
        await api.renew_concurrency_lease("L", 60.0)
        await api.renew_concurrency_lease("L", 60.0)

    _calls(unprotected, twice, csrf=True)
    assert [r.url.path for r in unprotected.requests] == [
        "/api/csrf-token",
        "/api/v2/concurrency_limits/leases/L/renew",
        "/api/v2/concurrency_limits/leases/L/renew",
    ]
    assert "Prefect-Csrf-Token" not in unprotected.requests[-1].headers
