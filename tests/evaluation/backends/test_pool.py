"""A host's connections in small pools (evaluation/backends/_pool.py): requests go to the
pool with the fewest open, each counted until its body is closed, errors included."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from evaluation.backends import GenerationRequest, OllamaBackend
from evaluation.backends._http import pool_limits, shared_tls_context
from evaluation.backends._machine_slots import LOCK_DIR_ENV
from evaluation.backends._pool import SHARD_SIZE, ShardedTransport, host_transport
from evaluation.spec import GenerationParams
from evaluation.suites import Message
from tests.support.standin_ollama import StandIn

pytestmark = pytest.mark.anyio


async def _body():
    yield b"line 1\nline 2\n"


def _answering(seen: list[int], index: int) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(index)
        return httpx.Response(200, content=_body())  # streamed, as from a socket

    return httpx.MockTransport(handle)


def _failing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


async def test_requests_go_to_the_pool_with_fewest_open_and_are_given_back_when_closed():
    seen: list[int] = []
    transport = ShardedTransport([_answering(seen, i) for i in range(3)])
    async with httpx.AsyncClient(transport=transport) as client:
        opened = [await client.send(client.build_request("GET", "http://h/"), stream=True)]
        opened += [await client.send(client.build_request("GET", "http://h/"), stream=True)]
        opened += [await client.send(client.build_request("GET", "http://h/"), stream=True)]
        assert sorted(seen) == [0, 1, 2]  # one each while all three are open
        assert transport.open_requests == [1, 1, 1]
        await opened[1].aclose()
        await client.get("http://h/")  # read whole and closed by httpx
        assert seen[-1] == 1  # the pool with fewest open
        assert transport.open_requests == [1, 0, 1]
        for response in (opened[0], opened[2]):
            assert [line async for line in response.aiter_lines()] == ["line 1", "line 2"]
            await response.aclose()
        assert transport.open_requests == [0, 0, 0]


async def test_a_request_that_fails_gives_its_place_back():
    transport = ShardedTransport([httpx.MockTransport(_failing), httpx.MockTransport(_failing)])
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("http://h/")
    assert transport.open_requests == [0, 0]


def test_small_hosts_keep_one_pool_and_large_ones_get_pools_of_at_most_the_shard_size():
    assert host_transport(pool_limits(SHARD_SIZE - 4), shared_tls_context()) is None
    large = host_transport(pool_limits(64), shared_tls_context())  # 68 connections
    assert isinstance(large, ShardedTransport)
    assert len(large.open_requests) == 9  # 9 pools of 8 hold 68


async def test_a_many_slot_host_answers_every_concurrent_generation(
    standin: StandIn, tmp_path, monkeypatch
):
    """Through the real client: 32 generations at once on a 32-slot host, all answered,
    the host never past its slots, every pool's count back to zero."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    standin.reconfigure(slots=32, latency_ms=20.0)
    request = GenerationRequest(
        "llama3", (Message("user", "hello there"),), GenerationParams(num_predict=8)
    )
    async with OllamaBackend(standin.host(slots=32)) as backend:
        transport = backend._client._transport
        assert isinstance(transport, ShardedTransport)
        results = await asyncio.gather(*(backend.generate(request) for _ in range(64)))
        assert transport.open_requests == [0] * len(transport.open_requests)
    assert [r.text for r in results] == ["hello there"] * 64
    assert standin.stats.max_in_flight <= 32
