"""A host's HTTP/1.1 connections on asyncio's own streams: the transport under the HTTP
backends' httpx clients.

httpx's own transport (httpcore over anyio, h11 parsing) cost more CPU per streamed
generation than everything else evalflow does for it: at 4,000 generations on a 64-slot
stand-in, httpx and what it runs were three quarters of the lanes' CPU (py-spy,
benchmarks/perf/throughput_goal.py), every read through a cancel scope, a lock and a
pool walk; this transport is a fifth of it (the run's CPU per generation 6.2 -> 4.3 ms
with the collector's change, evaluation/run/_heap.py). A model server's answers need
little of HTTP: a request with a body of known length, an answer framed by
``Content-Length``, chunked encoding or the connection's end, and keep-alive. This transport
speaks that much and nothing more (no HTTP/2, no ``Expect: 100-continue``, no upgrades):
requests and answers stay httpx's, so the client's API, timeouts and decoding are
unchanged. Proxies are not spoken: httpx reads no proxy variables (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``) for a client given its own transport, so a model server is
reached directly (docs/running-for-real.md). Before this transport, hosts of up to 4 slots
went through httpx's own, which does read them.

Its failures are httpx's exceptions as httpx's transport raises them (a reset read is a
``ReadError``, an answer cut short a ``RemoteProtocolError``, a silent host a
``ReadTimeout``), so ``_http.translate_errors`` tells them apart as before. Connections
found closed while idle are dropped before use. A request on a kept-alive connection that
the server closed as the request went out (the write failed, or the connection ended or
was reset before the head of an answer had come back whole) is sent again on
another connection, at most ``RESENDS`` times, as Go's HTTP client does for a server
that closed an idle connection: llama.cpp's ``llama-server`` closes the connection after
every streamed answer although its head says ``Keep-Alive``, and a lane that took the
connection back at once (before the close reached this side) failed its next request;
the backends then asked again after a retry wait, and the OpenAI-compatible backend
first sent a one-token probe (a whole prompt evaluated): 8 of 64 generations at
``--parallel 4`` (benchmarks/perf/real_engine_parallel.py).

How many requests are open at once is not decided here: the host's slots are
(``tasks/adapters/host_slots.py``, ``_machine_slots``); ``max_connections``
only caps the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator

import httpx

RESENDS = 2  # a request sent again after a reused connection closed unanswered
HEAD_LIMIT = 64 * 1024  # the most an answer's status line and headers may take
READ_SIZE = 64 * 1024
_NO_BODY = (204, 304)


# The connection ended before any byte of the answer: an httpx.RemoteProtocolError with
# this text (no subclass: the backends map httpx's own classes, tests/evaluation/backends).
CLOSED_UNANSWERED = "Server disconnected without sending a response."


def _closed_unanswered(failure: httpx.TransportError) -> bool:
    """Whether ``failure`` says the server closed the connection as the request went out."""
    if isinstance(failure, (httpx.WriteError, httpx.ReadError)):
        return True
    return isinstance(failure, httpx.RemoteProtocolError) and str(failure) == CLOSED_UNANSWERED


class _Connection:
    """One socket to the host, with what it has read not yet used."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.loop = asyncio.get_running_loop()  # its streams work in this loop only
        sock = writer.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1

    def usable(self) -> bool:
        """Still open, nothing unread on it: the server did not close it while idle. The
        socket itself is asked (a poll, as httpcore does), since the event loop may not
        have seen its end yet (a server stopped a moment ago)."""
        if not self.open():
            return False
        if self._fd < 0:
            return True
        poll = select.poll()
        poll.register(self._fd, select.POLLIN)
        return not poll.poll(0)  # readable while idle: closed, or unasked-for bytes

    def open(self) -> bool:
        """Neither side has closed it, as far as the event loop has seen."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # its event loop has ended
            self.writer.close()


class WireTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections to hosts, at most ``limits.max_connections`` open
    (a request waits for one within its ``pool`` timeout), at most
    ``limits.max_keepalive_connections`` of them kept idle, the last used first."""

    def __init__(self, limits: httpx.Limits, verify: ssl.SSLContext) -> None:
        self._most = limits.max_connections
        self._keep = limits.max_keepalive_connections
        self._tls = verify
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open = 0  # connections open or opening
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        resends = RESENDS
        # What a request that is sent again fails with is what happened to it first: a
        # host that held the request and then went away was reset, not unreachable.
        first_failure: httpx.TransportError | None = None
        while True:
            try:
                connection, reused = await self._connection(request, timeouts)
            except httpx.TransportError:
                if first_failure is None:
                    raise
                raise first_failure from None
            try:
                await _send(connection, request, timeouts.get("write"))
                status, reason, version, headers = await _read_head(
                    connection, request, timeouts.get("read")
                )
                break
            except httpx.TransportError as failure:
                self._drop(connection)
                if not _closed_unanswered(failure):
                    raise
                first_failure = first_failure or failure
                if not reused or not resends:
                    raise first_failure from None
                resends -= 1  # the server closed it as the request went out
            except BaseException:
                self._drop(connection)
                raise
        body = _Body(self, connection, request, status, version, headers)
        extensions = {"http_version": version, "reason_phrase": reason}
        return httpx.Response(status, headers=headers, stream=body, extensions=extensions)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                self._open -= 1
                connection.close()
        self._idle.clear()

    async def _connection(self, request: httpx.Request, timeouts: dict) -> tuple[_Connection, bool]:
        """A connection for ``request``, and whether it was kept from an earlier one."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        idle = self._idle.setdefault(key, [])
        loop = asyncio.get_running_loop()
        deadline = None if timeouts.get("pool") is None else loop.time() + timeouts["pool"]
        while True:
            while idle:
                connection = idle.pop()
                if connection.loop is loop and connection.usable():
                    return connection, True
                self._open -= 1
                connection.close()
            if self._most is None or self._open < self._most:
                break
            await self._wait_for_a_connection(request, deadline)
        self._open += 1
        try:
            return await _connect(key, self._tls, timeouts.get("connect"), request), False
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _wait_for_a_connection(self, request: httpx.Request, deadline: float | None):
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError:
            raise httpx.PoolTimeout("", request=request) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken, then cancelled: the next one looks instead
            raise
        finally:
            waiter.cancel()  # a no-op once woken; ``_wake`` skips it otherwise

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _keep_or_close(self, connection: _Connection, request: httpx.Request) -> None:
        """An answer read whole: its connection goes back to the idle ones."""
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        idle = self._idle.setdefault(key, [])
        kept = sum(len(c) for c in self._idle.values())
        if connection.open() and (self._keep is None or kept < self._keep):
            idle.append(connection)
        else:
            self._open -= 1
            connection.close()
        self._wake()

    def _drop(self, connection: _Connection) -> None:
        self._open -= 1
        connection.close()
        self._wake()


async def _connect(
    key: tuple[str, str, int], tls: ssl.SSLContext, timeout: float | None, request: httpx.Request
) -> _Connection:
    scheme, host, port = key
    secure = scheme == "https"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=tls if secure else None,
                server_hostname=host if secure else None,
                limit=HEAD_LIMIT,
            )
    except TimeoutError:
        raise httpx.ConnectTimeout("", request=request) from None
    except (OSError, ssl.SSLError) as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _Connection(reader, writer)


async def _send(connection: _Connection, request: httpx.Request, timeout: float | None) -> None:
    body = await request.aread()
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
    lines += [b"%s: %s" % (name, value) for name, value in request.headers.raw]
    if "transfer-encoding" in request.headers:  # a body of unknown length: one chunk
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    elif body and "content-length" not in request.headers:
        lines.append(b"Content-Length: %d" % len(body))
    try:
        async with asyncio.timeout(timeout):
            connection.writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            await connection.writer.drain()
    except TimeoutError:
        raise httpx.WriteTimeout("", request=request) from None
    except OSError as exc:
        raise httpx.WriteError("", request=request) from exc


async def _read_head(
    connection: _Connection, request: httpx.Request, timeout: float | None
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """(status, reason, HTTP version, headers) of the answer; informational (1xx)
    answers before it are skipped."""
    while True:
        try:
            async with asyncio.timeout(timeout):
                head = await connection.reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise httpx.ReadTimeout("", request=request) from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                said = "Server disconnected part-way through the response's headers."
                raise httpx.RemoteProtocolError(said, request=request) from None
            raise httpx.RemoteProtocolError(CLOSED_UNANSWERED, request=request) from None
        except asyncio.LimitOverrunError:
            said = "the response's headers are too long"
            raise httpx.RemoteProtocolError(said, request=request) from None
        except OSError as exc:
            raise httpx.ReadError("", request=request) from exc
        status_line, *header_lines = head[:-4].split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise httpx.RemoteProtocolError(
                f"not an HTTP/1 status line: {status_line[:100]!r}", request=request
            )
        headers = []
        for line in header_lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx.RemoteProtocolError(f"bad header line: {line[:100]!r}", request=request)
            headers.append((name, value.strip()))
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue
        return status, reason, version, headers


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; once read whole, its connection is kept for the
    next request (unless the answer or request said ``Connection: close``), else it is
    closed."""

    def __init__(
        self,
        transport: WireTransport,
        connection: _Connection,
        request: httpx.Request,
        status: int,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self._transport, self._connection, self._request = transport, connection, request
        self._timeout = request.extensions.get("timeout", {}).get("read")
        fields = {name.lower(): value for name, value in headers}
        self._length: int | None = None
        self._chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
        if request.method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            self._length = 0
        elif not self._chunked and b"content-length" in fields:
            try:
                self._length = int(fields[b"content-length"])
            except ValueError:
                raise httpx.RemoteProtocolError("bad Content-Length", request=request) from None
        closing = b"close" in fields.get(b"connection", b"").lower()
        closing |= b"close" in request.headers.get("connection", "").lower().encode()
        self._reusable = version == b"HTTP/1.1" and not closing
        if not self._chunked and self._length is None:
            self._reusable = False  # the body ends with the connection
        self._done = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._chunked:
                async for part in self._chunks():
                    yield part
            elif self._length is not None:
                async for part in self._counted(self._length):
                    yield part
            else:
                async for part in self._to_the_end():
                    yield part
            self._done = True
        except TimeoutError:
            raise httpx.ReadTimeout("", request=self._request) from None
        except OSError as exc:
            raise httpx.ReadError("", request=self._request) from exc
        finally:
            if self._done:
                self._release()

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._done and self._reusable:
            self._transport._keep_or_close(self._connection, self._request)
        else:
            self._transport._drop(self._connection)

    async def _read(self, size: int) -> bytes:
        async with asyncio.timeout(self._timeout):
            return await self._connection.reader.read(size)

    async def _counted(self, length: int) -> AsyncIterator[bytes]:
        left = length
        while left > 0:
            part = await self._read(min(left, READ_SIZE))
            if not part:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body: "
                    f"received {length - left} bytes, expected {length}",
                    request=self._request,
                )
            left -= len(part)
            yield part

    async def _to_the_end(self) -> AsyncIterator[bytes]:
        while part := await self._read(READ_SIZE):
            yield part

    async def _chunks(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        try:
            while True:
                async with asyncio.timeout(self._timeout):
                    line = await reader.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise httpx.RemoteProtocolError(
                        f"bad chunk size line: {line[:100]!r}", request=self._request
                    ) from None
                if size == 0:
                    async with asyncio.timeout(self._timeout):
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass  # trailers
                    return
                async with asyncio.timeout(self._timeout):
                    part = await reader.readexactly(size + 2)
                yield part[:-2]
        except asyncio.IncompleteReadError:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                "incomplete chunked read",
                request=self._request,
            ) from None
        except asyncio.LimitOverrunError:
            raise httpx.RemoteProtocolError(
                "a chunk size line too long", request=self._request
            ) from None
