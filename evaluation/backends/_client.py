"""What the HTTP backends share: one pooled httpx client per host, the first-request
timeout for cold models, error translation, streamed answers line by line
(``_stream_post``, keep-alive pings not taken for an answer), and closing."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from evaluation.backends._auth import auth_headers, credentials_sent
from evaluation.backends._http import (
    html_page,
    parse_json_object,
    pool_limits,
    raise_for_status,
    shared_tls_context,
    translate_errors,
)
from evaluation.backends._machine_slots import MachineSlots
from evaluation.backends._no_api import html_instead_of_api
from evaluation.backends._sending import park, sending_stopped
from evaluation.backends._wire import WireTransport
from evaluation.spec import HostSpec

_CONNECT_TIMEOUT_S = 10.0
T = TypeVar("T")


class OwnedClient:
    """Closing for classes holding ``self._client`` (an httpx.AsyncClient) that they
    close only when they made it (``self._owns_client``); usable with ``async with``."""

    _client: httpx.AsyncClient
    _owns_client: bool

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class HttpBackend(OwnedClient):
    """Base of the HTTP backends. The first request to each model gets
    ``first_request_timeout_s`` to read its response, because a cold load delays the
    first byte; later requests get ``timeout_s``. A timeout makes the model "cold" again
    (it may have been evicted), so the retry allows for a reload. A client passed in is
    the caller's to close, and carries the host's key itself (``auth.auth_headers``);
    one made here carries it (SpecError when its variable is unset)."""

    def __init__(
        self,
        host: HostSpec,
        *,
        timeout_s: float = 120.0,
        first_request_timeout_s: float = 600.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.host = host
        connect = min(_CONNECT_TIMEOUT_S, timeout_s)
        self._timeout = httpx.Timeout(timeout_s, connect=connect)
        self._first_timeout = httpx.Timeout(
            timeout_s, connect=connect, read=max(timeout_s, first_request_timeout_s)
        )
        self._owns_client = client is None
        headers = auth_headers(host) if client is None else {}
        self._key = headers.get("Authorization", "").removeprefix("Bearer ")  # masked in errors
        self._sent = credentials_sent(host)  # what a 401/403 says was sent
        limits = pool_limits(host.slots)
        # lighter than httpcore; streamed calls go to it straight (``_stream_post``)
        self._wire = WireTransport(limits, shared_tls_context()) if client is None else None
        self._client = client or httpx.AsyncClient(
            timeout=self._timeout,
            headers=headers,
            limits=limits,
            verify=shared_tls_context(),
            transport=self._wire,
        )
        self._base = host.url.rstrip("/")
        self._stream_headers: httpx.Headers | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._warm: set[str] = set()
        self._machine_slots: MachineSlots | None = None  # opened on the first call

    async def _attempt(self, model: str, call: Callable[[httpx.Timeout], Awaitable[T]]) -> T:
        """Run one call to ``model`` (generation or embedding) with the right timeout,
        errors translated, holding one of the host's machine-wide slots
        (``_machine_slots``) for the HTTP call."""
        if sending_stopped():
            await park()
        timeout = self._timeout if model in self._warm else self._first_timeout
        if self._machine_slots is None:
            self._machine_slots = MachineSlots(self.host.url, self.host.slots)
        with self._translate_errors(model):
            try:
                async with self._machine_slots.hold():  # across processes on this machine
                    result = await call(timeout)
            except httpx.TimeoutException:
                self._warm.discard(model)
                raise
        self._warm.add(model)
        return result

    async def aclose(self) -> None:
        if self._machine_slots is not None:
            self._machine_slots.close()
            self._machine_slots = None
        await super().aclose()

    async def _post_json(
        self, path: str, payload: dict[str, Any], timeout: httpx.Timeout
    ) -> dict[str, Any]:
        """POST ``payload``, the answer's JSON object; an error status raises (mapped by
        the caller's ``translate_errors``)."""
        response = await self._client.post(self._url(path), json=payload, timeout=timeout)
        await raise_for_status(response)
        return parse_json_object(response.text)

    @asynccontextmanager
    async def _stream_post(
        self, path: str, payload: dict[str, Any], timeout: httpx.Timeout
    ) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[str]]]:
        """POST ``payload`` as JSON: the answer (its status and headers read) and its
        lines as they arrive. On the backend's own transport the request goes to it
        straight and the lines are split from its bytes: httpx's client layers (request
        building, auth and redirect flows, cookies) and its three decoding layers under
        ``aiter_lines`` cost about as much CPU per streamed generation as the transport
        itself (py-spy, benchmarks/perf/pipeline_throughput.py at 64 slots). The request
        is what httpx would send but for ``Accept-Encoding`` (the answer is not decoded, so
        none is asked for). A client passed in goes through httpx as before but for the
        lines, split from its decoded bytes. Either way the lines end in
        ``httpx.ReadTimeout`` once only keep-alive pings came for the read timeout
        (``_lines``)."""
        url = self._url(path)
        if self._wire is None:
            async with self._client.stream("POST", url, json=payload, timeout=timeout) as answer:
                yield answer, _lines(answer.aiter_bytes(), answer.request, timeout.read)
            return
        if self._stream_headers is None:
            self._stream_headers = _stream_headers(self._client, url)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        request = httpx.Request(
            "POST",
            url,
            headers=self._stream_headers,
            content=body.encode(),
            extensions={"timeout": timeout.as_dict()},
        )
        answer = await self._wire.handle_async_request(request)
        answer.request = request
        try:
            yield answer, _lines(answer.stream, request, timeout.read)
        finally:
            await answer.aclose()

    def _translate_errors(self, model: str = "") -> AbstractContextManager[None]:
        """``translate_errors`` for this host: its URL's password and its key masked, a
        401/403 saying what was sent."""
        return translate_errors(
            self.host.name, model, url=self.host.url, key=self._key, sent=self._sent
        )

    async def _get_json(self, path: str) -> dict[str, Any]:
        with self._translate_errors():
            response = await self._client.get(self._url(path), timeout=self._timeout)
            await raise_for_status(response)
            if html_page(response.text):
                raise html_instead_of_api(response, self.host)
            return parse_json_object(response.text)

    def _url(self, path: str) -> httpx.URL:
        """``path`` on the host, parsed once: httpx parses a URL given as a string on
        every request (~20 us, 1-2% of a generation's CPU against a fast host)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self._base + path)
        return url


def _stream_headers(client: httpx.AsyncClient, url: httpx.URL) -> httpx.Headers:
    """The headers httpx's client sends with a JSON body to ``url``, but
    ``Accept-Encoding`` (``HttpBackend._stream_post``): credentials in the URL
    (``http://user:password@host``) become Basic auth, as httpx's auth flow makes them."""
    headers = httpx.Headers({"Host": url.netloc.decode("ascii")})
    headers.update(client.headers)
    headers["Content-Type"] = "application/json"
    del headers["Accept-Encoding"]
    if url.username or url.password:
        userinfo = f"{url.username}:{url.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo).decode("ascii")
    return headers


async def _lines(
    body: AsyncIterable[bytes], request: httpx.Request, silence_s: float | None
) -> AsyncIterator[str]:
    """A body's lines as they arrive (ended by ``\\n`` or ``\\r\\n``), UTF-8 decoded; ended by
    ``httpx.ReadTimeout`` when nothing but SSE comments (``:`` lines, a server's keep-alive
    pings) and blank lines came for ``silence_s``: from the answer's start before its
    first other line, else from the first ping after one (so a stall between two tokens
    is given up on within twice ``silence_s``: the transport's read timeout ends a
    silence before the first ping; a clock read per line cost ~0.1 us). The transport's
    read timeout bounds only silence between bytes, so pings kept a try waiting past its
    limit: llama-cpp-python's server pings every 15 s, and a ``request_timeout_s: 20``
    try stored a 53 s time to first token."""
    parts = aiter(body)
    clock = asyncio.get_running_loop().time
    start = clock()
    deadline: float | None = None  # set by a ping, cleared by any other line
    spoke = False
    rest = b""
    while True:
        try:
            if deadline is None:
                part = await anext(parts)
            else:
                async with asyncio.timeout_at(deadline):
                    part = await anext(parts)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise httpx.ReadTimeout("only keep-alive pings came", request=request) from None
        if rest:
            part = rest + part
        *lines, rest = part.split(b"\n")
        for line in lines:
            if line[:1] == b":":
                if deadline is None and silence_s is not None:
                    deadline = (clock() if spoke else start) + silence_s
            elif (deadline is not None or not spoke) and line.strip():
                deadline, spoke = None, True
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if rest:
        yield rest.rstrip(b"\r").decode("utf-8", "replace")
