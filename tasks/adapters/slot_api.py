"""The slot writes of a lane worker, on Prefect's REST concurrency endpoints without
Prefect's client (``SlotApi``): a worker imports no Prefect at all.

A lane worker needed Prefect only to talk to the run's server about its host slots
(``HostSlots``: take, renew, give back, zero a limit's count), but importing Prefect's
client cost each worker ~3.5 s of CPU on 2 loaded cores, a third of a 4,000-generation
run's start with two workers. ``SlotApi`` makes the same calls as Prefect 3.8's
``PrefectClient`` (``prefect/client/orchestration/_concurrency_limits/client.py``: the
same paths and bodies) with the same headers (API version, user agent, API key or auth
string, custom headers), TLS settings, timeouts and retries (408, 429, 502 and the
transport errors its client tries again; a CSRF token where the server asks for one),
each read from the run's Prefect settings in the run's process (``slot_api_settings``)
and sent to the worker as plain values. As with every Prefect client evalflow makes
(``prefect_client``), a busy answer (503: the server's database busy) is sent again
within a tenth of a second by ``BusyRetry``, not 2 s later.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from tasks.adapters.prefect_client import POOL, BusyRetry, tls_context

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

RETRY_CODES = frozenset({408, 429, 502})  # and 503: all sent again soon by ``BusyRetry``
RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.ReadTimeout,
    httpx.PoolTimeout,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.LocalProtocolError,
)


@dataclass(frozen=True)
class SlotApiSettings:
    """How to reach the run's Prefect server, as Prefect's client of the run would."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True  # False: no TLS check; a path: its CA file
    timeout_s: float = 60.0
    http2: bool = False
    csrf: bool = False  # ask the server for a CSRF token before a write
    max_retries: int = 5
    retry_codes: frozenset[int] = RETRY_CODES
    jitter: float = 0.2
    follow_redirects: bool = True


def slot_api_settings(client: PrefectClient) -> SlotApiSettings:
    """In the run's process: what a worker needs to talk to ``client``'s server as
    ``client`` would (Prefect's settings of the run, read here)."""
    import certifi
    import prefect
    from prefect.client.base import ServerType
    from prefect.client.constants import SERVER_API_VERSION
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    protected = {"user-agent", "prefect-csrf-token", "prefect-csrf-client"}
    headers = {
        k: v for k, v in settings.client.custom_headers.items() if k.lower() not in protected
    }
    headers["User-Agent"] = f"prefect/{prefect.__version__} (API {SERVER_API_VERSION})"
    headers["X-PREFECT-API-VERSION"] = SERVER_API_VERSION
    auth_string = settings.api.auth_string.get_secret_value() if settings.api.auth_string else ""
    api_key = settings.api.key.get_secret_value() if settings.api.key else ""
    if auth_string:
        import base64

        headers["Authorization"] = f"Basic {base64.b64encode(auth_string.encode()).decode()}"
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    verify: bool | str = (
        False
        if settings.api.tls_insecure_skip_verify
        else (settings.api.ssl_cert_file or certifi.where())
    )
    return SlotApiSettings(
        url=str(client.api_url),
        headers=headers,
        verify=verify,
        timeout_s=float(settings.api.request_timeout),
        http2=bool(settings.api.enable_http2),
        csrf=client.server_type != ServerType.CLOUD and settings.client.csrf_support_enabled,
        max_retries=settings.client.max_retries,
        retry_codes=RETRY_CODES | set(settings.client.retry_extra_codes) - {503},
        jitter=settings.client.retry_jitter_factor,
        follow_redirects=not settings.testing.unit_test_mode,
    )


@dataclass(frozen=True)
class LimitReading:
    """A global concurrency limit as read (what ``HostSlots`` reads of one)."""

    limit: int
    active_slots: int


class SlotApi:
    """The concurrency calls ``HostSlots`` makes, as ``PrefectClient``'s methods of the
    same names (an async context manager, like it)."""

    def __init__(
        self, settings: SlotApiSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        if transport is None:
            transport = httpx.AsyncHTTPTransport(
                verify=tls_context(settings.verify), http2=settings.http2, limits=POOL, retries=3
            )
        self._client = httpx.AsyncClient(
            base_url=settings.url,
            headers=settings.headers,
            timeout=settings.timeout_s,
            follow_redirects=settings.follow_redirects,
            transport=BusyRetry(transport),
        )
        self._csrf = settings.csrf
        self._csrf_token: str | None = None
        self._csrf_client = str(uuid.uuid4())
        self._connected = False

    @property
    def api_url(self) -> str:
        return self._settings.url

    async def __aenter__(self) -> SlotApi:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._client.__aexit__(*exc_info)

    async def increment_concurrency_slots(
        self, names: list[str], slots: int, mode: str
    ) -> httpx.Response:
        body = {"names": names, "slots": slots, "mode": mode}
        return await self._request("POST", "/v2/concurrency_limits/increment", body)

    async def increment_concurrency_slots_with_lease(
        self,
        names: list[str],
        slots: int,
        mode: str,
        lease_duration: float,
        holder: Any = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "names": names,
            "slots": slots,
            "mode": mode,
            "lease_duration": lease_duration,
        }
        if holder is not None:
            body["holder"] = holder.model_dump(mode="json")
        return await self._request("POST", "/v2/concurrency_limits/increment-with-lease", body)

    async def renew_concurrency_lease(self, lease_id: Any, lease_duration: float) -> httpx.Response:
        return await self._request(
            "POST",
            f"/v2/concurrency_limits/leases/{lease_id}/renew",
            {"lease_duration": lease_duration},
        )

    async def release_concurrency_slots(
        self, names: list[str], slots: int, occupancy_seconds: float
    ) -> httpx.Response:
        body = {"names": names, "slots": slots, "occupancy_seconds": occupancy_seconds}
        return await self._request("POST", "/v2/concurrency_limits/decrement", body)

    async def release_concurrency_slots_with_lease(self, lease_id: Any) -> httpx.Response:
        body = {"lease_id": str(lease_id)}
        return await self._request("POST", "/v2/concurrency_limits/decrement-with-lease", body)

    async def update_global_concurrency_limit(self, name: str, update: Any) -> httpx.Response:
        body = update.model_dump(mode="json", exclude_unset=True)
        return await self._request("PATCH", f"/v2/concurrency_limits/{name}", body)

    async def read_global_concurrency_limit_by_name(self, name: str) -> LimitReading:
        body = (await self._request("GET", f"/v2/concurrency_limits/{name}")).json()
        return LimitReading(int(body["limit"]), int(body["active_slots"]))

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """As Prefect's client sends: tried again on its retry codes and transport
        errors (up to ``max_retries`` more times, after Retry-After or 2^n s; a busy
        answer or a dropped connection first sent again soon by ``BusyRetry``), any
        other error status raised."""
        change = method != "GET"
        if change and self._csrf:
            await self._add_csrf_token()
        tries = 0
        while True:
            request = self._client.build_request(method, path, json=body)
            if change and self._csrf_token is not None:
                request.headers["Prefect-Csrf-Token"] = self._csrf_token
                request.headers["Prefect-Csrf-Client"] = self._csrf_client
            retrying = RETRY_EXCEPTIONS + ((httpx.ConnectError,) if self._connected else ())
            tries += 1
            wait: float | None = None
            try:
                response = await self._client.send(request)
            except retrying:
                if tries > self._settings.max_retries:
                    raise
            else:
                self._connected = True
                if response.status_code == 403 and "Invalid CSRF token" in response.text:
                    self._csrf_token = None
                    await self._add_csrf_token()
                elif (
                    response.status_code not in self._settings.retry_codes
                    or tries > self._settings.max_retries
                ):
                    response.raise_for_status()
                    return response
                if "Retry-After" in response.headers:
                    try:
                        wait = float(response.headers["Retry-After"])
                    except ValueError:
                        wait = None
            if wait is None:
                wait = float(2**tries) * random.uniform(
                    1 - self._settings.jitter, 1 + self._settings.jitter
                )
            await asyncio.sleep(wait)

    async def _add_csrf_token(self) -> None:
        """A CSRF token for writes, as Prefect's client gets one: none where the server
        has no CSRF protection (it says so) or no token endpoint."""
        if not self._csrf or self._csrf_token is not None:
            return
        response = await self._client.get("/csrf-token", params={"client": self._csrf_client})
        if response.status_code == 404 or (
            response.status_code == 422 and "CSRF protection is disabled." in response.text
        ):
            self._csrf = False
            return
        response.raise_for_status()
        self._csrf_token = response.json()["token"]
