"""A host's connections as several small pools: the HTTP client of a host with many slots.

httpcore's connection pool walks every connection it holds twice per request (when the
request is queued and when its response closes), asks each idle one whether its socket
is readable (a ``getpeername`` and a ``poll`` per connection) and, for each, counts the
idle ones again: quadratic in the pool's size. At 64 slots that walk was ~20% of the
client process's CPU (py-spy, benchmarks/perf/throughput_goal.py at 4,000 generations).
Here a host's connections are split into pools of at most ``SHARD_SIZE``, and a request
goes to the pool with the fewest requests open; the walk then costs what it costs for
8 connections. Hosts of up to ``SHARD_SIZE`` connections keep one plain pool.

How many requests are open at once is not decided here: the host's slots are
(``tasks/adapters/prefect_concurrency.py``, ``_machine_slots``); the pools only carry them.
"""

from __future__ import annotations

import math
import ssl

import httpx

SHARD_SIZE = 8


class _Counted(httpx.AsyncByteStream):
    """A response body that gives its pool's count back once closed."""

    def __init__(self, stream: httpx.AsyncByteStream, done) -> None:
        self._stream = stream
        self._done = done

    async def __aiter__(self):
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._done()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several transports (each its own connection pool); each request on the one with
    the fewest requests open (its response body counts until it is closed)."""

    def __init__(self, pools: list[httpx.AsyncBaseTransport]) -> None:
        self._pools = pools
        self._open = [0] * len(pools)

    @property
    def open_requests(self) -> list[int]:
        return list(self._open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._open.__getitem__)
        self._open[index] += 1
        closed = False

        def done() -> None:
            nonlocal closed
            if not closed:
                closed = True
                self._open[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            done()
            raise
        if response.is_closed:  # read whole already (a body given as bytes)
            done()
        else:
            response.stream = _Counted(response.stream, done)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def host_transport(limits: httpx.Limits, verify: ssl.SSLContext) -> httpx.AsyncBaseTransport | None:
    """The transport for a host client of ``limits``: None (httpx's own single pool)
    up to ``SHARD_SIZE`` connections, else pools of at most that many."""
    size = limits.max_connections or 0
    if size <= SHARD_SIZE:
        return None
    shards = math.ceil(size / SHARD_SIZE)
    each = math.ceil(size / shards)
    limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
    return ShardedTransport(
        [httpx.AsyncHTTPTransport(verify=verify, limits=limits) for _ in range(shards)]
    )
