"""One setup for every Prefect client evalflow makes (``prefect_client``): an answer of
a busy server sent again within a tenth of a second, not Prefect's 2 s, then 4 s.

Prefect's server on SQLite answers a write 503 at once when its database is busy
("database is locked"), and Prefect 3.8's client sends it again 2 s later, then 4 s, 8 s
(``prefect/client/base.py``, ``_send_with_retry``: ``2**n`` s unless the answer carries
Retry-After). Its settings say how many times (PREFECT_CLIENT_MAX_RETRIES), the jitter
(PREFECT_CLIENT_RETRY_JITTER_FACTOR) and which more codes (PREFECT_CLIENT_RETRY_EXTRA_CODES),
none of them the delay. evalflow's embedded server asks for a short Retry-After itself
(``flows/embedded_server.with_retry_after``); a shared server (``prefect server start``)
does not, and a run's slot writes, `serve`'s stop, a doctor's health check stalled
behind those seconds.

So every client evalflow makes sends through ``BusyRetry``, an httpx transport handed to
Prefect's client in its ``httpx_settings`` (a construction hook: nothing of Prefect's is
patched): a busy answer (``BUSY_CODES``) or a connection reset is sent again after
``FIRST_WAIT_S``, the wait doubling up to ``WAIT_CAP_S`` (or what the server's
Retry-After asks), until the caller's budget is spent; then ``PrefectBusy``, "the Prefect
API stayed busy for N s: POST /api/...: 503" (an ``httpx.TransportError``: a caller that
tolerates the API's errors tolerates it; a run turns it into try later, exit 75).
Prefect's own retries never see a busy answer. The budget starts at the first busy
answer, not when the caller began waiting (a slot write queued behind the run's others
had spent its 120 s in that queue and failed at its first 503).

The client Prefect's engine writes a flow run's states with (created, running,
completed: ``propose_state``) is one of these too where evalflow starts the flow in its
own process (``engine_client``: `run`'s flow; `compare --publish`'s, `rescore`'s and
`retrain`'s, which Prefect's sync engine runs). No Prefect setting shortens the engine's
own waits: its settings are the number of tries (PREFECT_CLIENT_MAX_RETRIES), the
jitter (PREFECT_CLIENT_RETRY_JITTER_FACTOR, around the same mean) and more codes, and 0
tries fails the flow run at its first busy answer. Not covered: a deployment's run
started by a Prefect worker or `serve`'s runner (a process of Prefect's own, whose
engine makes its client), and Prefect's log and event workers (their own threads,
sending in the background). On the embedded server its Retry-After shortens their waits
the same way. Task runs' states go as events, not as writes. This module imports no
Prefect until ``prefect_client`` is called: a lane worker's ``SlotApi`` sends through
``BusyRetry`` too.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from evaluation.errors import TryLater

#: The answers of a busy server, as Prefect's client retries them (2 s later, then 4 s).
BUSY_CODES = frozenset({408, 429, 502, 503})
#: A connection the server dropped under load: Prefect's client sends these again too.
RESETS: tuple[type[Exception], ...] = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
FIRST_WAIT_S = 0.05
WAIT_CAP_S = 1.0
#: How long a run's writes wait out a busy server. Prefect's SQLite waits up to 60 s for
#: a lock (its busy_timeout), and under four concurrent runs a server was measured
#: answering nothing for ~60 s: a shorter budget failed generations.
BUSY_BUDGET_S = 120.0


class PrefectBusy(httpx.TransportError):
    """The Prefect API answered busy (or dropped the connection) for the whole budget."""


def busy_as_try_later(exc: BaseException) -> TryLater | None:
    """``exc`` as a refusal for now (exit 75, as `run`'s busy Prefect API), where it is a
    ``PrefectBusy`` or was raised from one: Prefect's client says a busy answer to its
    version check as "RuntimeError: Failed to reach API at URL". Else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, PrefectBusy):
            url = cause.request.url
            server = httpx.URL(scheme=url.scheme, host=url.host, port=url.port)
            return TryLater(f"{cause} (at {server}); run the same command again when it answers")
        seen.add(id(cause))
        cause = cause.__cause__
    return None


def _jitter() -> float:
    return random.uniform(0.5, 1.0)


def busy_waits(jitter: Callable[[], float] | None = None) -> Iterator[float]:
    """The waits between sends of a busy answer: ``FIRST_WAIT_S``, doubling, capped at
    ``WAIT_CAP_S``, each scaled by ``jitter()`` (by default a half to a whole: writers
    told busy together do not all come back together)."""
    jitter = jitter or _jitter
    wait = FIRST_WAIT_S
    while True:
        yield wait * jitter()
        wait = min(wait * 2, WAIT_CAP_S)


@dataclass(frozen=True)
class BusyPolicy:
    """How a busy answer is sent again: within ``budget_s``; ``on_busy(status)`` told
    of each; ``sleep``, ``clock`` and ``jitter`` injectable (tests count the waits)."""

    budget_s: float = BUSY_BUDGET_S
    on_busy: Callable[[str], None] | None = None
    sleep: Callable[[float], Any] | None = None  # asyncio.sleep, or time.sleep (sync)
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] | None = None


class _Busy:
    """One request's busy spell: when it began, the next wait, the last busy answer."""

    def __init__(self, policy: BusyPolicy, request: httpx.Request) -> None:
        self._policy = policy
        self._request = request
        self._waits = busy_waits(policy.jitter)
        self._since: float | None = None

    def wait_after(self, why: str, retry_after: float | None, cause: Exception | None) -> float:
        """How long to wait before sending again; ``PrefectBusy`` once the budget is out."""
        policy = self._policy
        now = policy.clock()
        if self._since is None:
            self._since = now
        if policy.on_busy is not None:
            policy.on_busy(why)
        wait = retry_after if retry_after is not None else next(self._waits)
        if now + wait - self._since > policy.budget_s:
            request = self._request
            raise PrefectBusy(
                f"the Prefect API stayed busy for {policy.budget_s:g} s: "
                f"{request.method} {request.url.path}: {why}",
                request=request,
            ) from cause
        return wait


def _verdict(response: httpx.Response) -> tuple[str, float | None] | None:
    """``(status, Retry-After)`` when ``response`` is a busy answer, else None."""
    if response.status_code not in BUSY_CODES:
        return None
    try:
        retry_after = float(response.headers.get("Retry-After", ""))
    except ValueError:
        retry_after = None
    return str(response.status_code), retry_after


class BusyRetry(httpx.AsyncBaseTransport):
    """``inner``, its busy answers sent again soon, as ``policy`` says (see the module)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, **policy: Any) -> None:
        self.inner = inner
        self.policy = BusyPolicy(**policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # its body, sent again as it is
        busy = _Busy(self.policy, request)
        while True:
            try:
                response = await self.inner.handle_async_request(request)
            except RESETS as exc:
                wait = busy.wait_after(type(exc).__name__, None, exc)
            else:
                if (verdict := _verdict(response)) is None:
                    return response
                await response.aclose()
                wait = busy.wait_after(*verdict, None)
            await (self.policy.sleep or asyncio.sleep)(wait)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SyncBusyRetry(httpx.BaseTransport):
    """``BusyRetry`` for Prefect's sync client."""

    def __init__(self, inner: httpx.BaseTransport, **policy: Any) -> None:
        self.inner = inner
        self.policy = BusyPolicy(**policy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        busy = _Busy(self.policy, request)
        while True:
            try:
                response = self.inner.handle_request(request)
            except RESETS as exc:
                wait = busy.wait_after(type(exc).__name__, None, exc)
            else:
                if (verdict := _verdict(response)) is None:
                    return response
                response.close()
                wait = busy.wait_after(*verdict, None)
            (self.policy.sleep or time.sleep)(wait)

    def close(self) -> None:
        self.inner.close()


#: Prefect's client's connection pool (``PrefectClient.__init__``), which a transport of
#: our own replaces.
POOL = httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=25)


@functools.lru_cache(maxsize=8)
def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context Prefect's client builds: ``False``, no check; a path, its CAs.
    Built once a process and shared by every client (Prefect's client built one per
    client, parsing certifi's whole bundle each time: ~30–85 ms of CPU under load)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return (
        ssl.create_default_context(cafile=verify)
        if isinstance(verify, str)
        else httpx.create_ssl_context()
    )


def _verify_setting() -> bool | str:
    """Prefect's TLS settings, as its client reads them."""
    import certifi
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    return False if api.tls_insecure_skip_verify else (api.ssl_cert_file or certifi.where())


def prefect_client(
    *,
    sync: bool = False,
    budget_s: float = BUSY_BUDGET_S,
    on_busy: Callable[[str], None] | None = None,
    api_url: str | None = None,
    httpx_settings: dict[str, Any] | None = None,
    **transport: Any,
):
    """A Prefect client (``get_client``'s, or one of ``api_url``) whose busy answers are
    sent again soon, for up to ``budget_s`` (``BusyRetry``). ``transport``: ``inner``
    (the transport under it, else httpx's, set as Prefect's client would set its own),
    ``sleep``, ``clock``, ``jitter`` (tests)."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient, get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_ENABLE_HTTP2, PREFECT_API_KEY

    verify = tls_context(_verify_setting())
    inner = transport.pop("inner", None)
    if inner is None:
        options = {
            "verify": verify,
            "http2": bool(PREFECT_API_ENABLE_HTTP2.value()),
            "limits": POOL,
            "retries": 3,  # Prefect's client sets its pool's to 3 (connections refused)
        }
        inner = httpx.HTTPTransport(**options) if sync else httpx.AsyncHTTPTransport(**options)
    wrapper = SyncBusyRetry if sync else BusyRetry
    settings = {
        "verify": verify,  # Prefect's client builds none of its own when given one
        **(httpx_settings or {}),
        "transport": wrapper(inner, budget_s=budget_s, on_busy=on_busy, **transport),
    }
    if api_url is None:
        return get_client(httpx_settings=settings, sync_client=sync)
    kind = SyncPrefectClient if sync else PrefectClient
    return kind(
        api_url,
        api_key=PREFECT_API_KEY.value(),
        auth_string=PREFECT_API_AUTH_STRING.value(),
        httpx_settings=settings,
    )


def engine_client(*, sync: bool = False, **transport: Any) -> Any:
    """A client context to enter around flow runs (``async with``; ``sync``: ``with``,
    for flows of plain functions): while it is entered, the flow runs started in it write
    their states through a ``prefect_client`` (``transport``: its test hooks): Prefect's
    engine takes the client of the client context it finds (``AsyncClientContext``, the
    sync engine ``SyncClientContext``) rather than making one. The context is made as the
    engine would make its own, with the client given (``model_construct``: its
    constructor makes a client of Prefect's settings): Prefect's other lookups in the flow
    (``get_client()`` of a task run) find the same client, as they find the engine's,
    rather than each making one. No public API makes that context (its constructor's
    ``httpx_settings`` would keep ``get_client()`` from handing the client out): what
    this assumes of Prefect's (3.8) is checked against the installed one by
    tests/flows/test_prefect_client.py."""
    from prefect.context import AsyncClientContext, SyncClientContext

    kind = SyncClientContext if sync else AsyncClientContext
    return kind.model_construct(client=prefect_client(sync=sync, **transport))
