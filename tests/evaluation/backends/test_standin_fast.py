"""The light stand-in (``tests.support.standin_fast``) answers as the ASGI stand-in does,
holds the host to its slots and counts what it served."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from evaluation.backends import GenerationRequest, OllamaBackend
from evaluation.spec import GenerationParams, HostSpec
from evaluation.suites import Message
from tests.evaluation.backends.conftest import FAST
from tests.support.ollama_wire import BUSY_MESSAGE
from tests.support.standin_fast import FastStandIn
from tests.support.standin_ollama import StandIn
from tests.support.standin_process import StandInProcess

USER = [{"role": "user", "content": "one two three four five six"}]
TIMED = ("created_at", "created", "total_duration", "load_duration", "prompt_eval_duration")
TIMED += ("eval_duration",)


@pytest.fixture
def fast() -> Iterator[FastStandIn]:
    host = FastStandIn(FAST).start()
    try:
        yield host
    finally:
        host.stop()


def untimed(value):
    """``value`` without its timestamps and durations (they differ run to run)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMED}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def answers(url: str) -> list:
    """What a host answers to the routes the clients use, timings left out."""
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in ("/", "/api/version", "/api/tags", "/v1/models", "/api/nothing"):
            response = client.get(path)
            out.append((path, response.status_code, response.headers["content-type"]))
            out.append(untimed(response.json()) if "json" in out[-1][2] else response.text)
        for path, body in (
            ("/api/show", {"model": "llama3"}),
            ("/api/show", {"model": "nope"}),
            ("/api/chat", {"model": "llama3", "messages": USER, "options": {"num_predict": 4}}),
            ("/api/chat", {"model": "llama3", "messages": USER, "stream": False}),
            ("/api/chat", {"model": "ghost:7b", "messages": USER}),
            ("/api/chat", {"model": "", "messages": USER}),
            ("/v1/chat/completions", {"model": "llama3", "messages": USER, "stream": True,
                                      "max_tokens": 2, "stream_options": {"include_usage": True}}),
            ("/v1/chat/completions", {"model": "llama3", "messages": USER, "max_tokens": 3}),
            ("/api/embed", {"model": "llama3", "input": ["a b", "c"]}),
            ("/v1/embeddings", {"model": "llama3", "input": "a b"}),
        ):  # fmt: skip
            response = client.post(path, json=body)
            out.append((path, response.status_code, response.headers["content-type"]))
            text = response.text
            if path == "/v1/chat/completions" and body.get("stream"):
                events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
                out.append([untimed(json.loads(e)) if e != "[DONE]" else e for e in events])
            else:
                out.append([untimed(json.loads(line)) for line in text.splitlines() if line])
        empty = client.post("/api/chat", content=b"")
        out.append((empty.status_code, empty.json()))
    return out


def test_it_answers_as_the_asgi_standin_does(fast: FastStandIn, standin: StandIn) -> None:
    assert answers(fast.url) == answers(standin.url)
    counted = ("requests", "requests_by_model", "embed_requests", "texts_embedded", "loads")
    assert {k: fast.stats_json()[k] for k in counted} == {
        "requests": 4,  # of a model the host has
        "requests_by_model": {"llama3:latest": 4},
        "embed_requests": 2,
        "texts_embedded": 3,
        "loads": {"llama3:latest": 1},
    }
    assert standin.stats.requests == 4 and standin.stats.embed_requests == 2


async def _concurrent(url: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        body = {"model": "llama3", "messages": USER}
        return await asyncio.gather(*(client.post("/api/chat", json=body) for _ in range(n)))


def _answers_held_until(host: FastStandIn, arrivals: int) -> FastStandIn:
    """``host`` beginning no answer (its latency's clock not started) until ``arrivals``
    requests have come in, taken or turned away: which wait and which are refused then
    follows from the slots and the queue alone, however loaded the machine."""
    held: list[Callable[[], None]] = []
    begin, overloaded, admit = host._begin, host._overloaded, host.admit

    def arrived() -> None:
        if host.stats.in_flight + host.stats.overloaded >= arrivals:
            host._begin = begin
            for answer in held:
                answer()

    def held_begin(job) -> None:
        job.begin, answer = (lambda: held.append(answer)), job.begin
        begin(job)

    def counted_overloaded(conn, dialect) -> bool:
        refused = overloaded(conn, dialect)
        arrived()
        return refused

    def counted_admit(job) -> None:
        admit(job)
        arrived()

    host._begin, host._overloaded, host.admit = held_begin, counted_overloaded, counted_admit
    return host


def test_requests_beyond_the_slots_wait_for_one() -> None:
    # No answer begins before all six are open at the host.
    config = dataclasses.replace(FAST, slots=2, latency_ms=20.0)
    host = _answers_held_until(FastStandIn(config), 6).start()
    try:
        responses = asyncio.run(_concurrent(host.url, 6))
        stats = httpx.get(host.url + "/_stats?spans=1").json()
    finally:
        host.stop()
    assert [r.status_code for r in responses] == [200] * 6
    assert stats["max_busy"] == 2  # answered two at a time
    assert stats["max_in_flight"] == 6  # open at the host, waiting included
    assert stats["in_flight"] == 0
    assert len(stats["spans"]) == 6
    assert all(start <= end for start, end in stats["spans"])


def test_beyond_slots_plus_queue_the_host_is_busy() -> None:
    config = dataclasses.replace(FAST, slots=1, max_queue=1, latency_ms=20.0)
    host = _answers_held_until(FastStandIn(config), 5).start()
    try:
        responses = asyncio.run(_concurrent(host.url, 5))
        overloaded = host.stats.overloaded
    finally:
        host.stop()
    assert sorted(r.status_code for r in responses) == [200, 200, 503, 503, 503]
    assert next(r for r in responses if r.status_code == 503).json() == {"error": BUSY_MESSAGE}
    assert overloaded == 3


async def _leave_while_waiting(url: str) -> httpx.Response:
    """One request holds the only slot, a second waits and gives up, a third follows."""
    body = {"model": "llama3", "messages": USER}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        first = asyncio.ensure_future(client.post("/api/chat", json=body))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.ReadTimeout):  # only the answer is waited for briefly
            await client.post("/api/chat", json=body, timeout=httpx.Timeout(10, read=0.05))
        await first
        return await client.post("/api/chat", json=body)


def test_a_client_gone_gives_its_place_up() -> None:
    host = FastStandIn(dataclasses.replace(FAST, slots=1, latency_ms=400.0)).start()
    try:
        last = asyncio.run(_leave_while_waiting(host.url))
        stats = httpx.get(host.url + "/_stats").json()
        assert not host.waiting
    finally:
        host.stop()
    assert last.status_code == 200
    assert stats["requests"] == 3
    assert stats["in_flight"] == 0
    assert stats["max_busy"] == 1


def test_bad_requests_get_one_clear_answer(fast: FastStandIn) -> None:
    with socket.create_connection(("127.0.0.1", fast.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 501 ")
    assert answer.endswith(b"chunked request bodies are not spoken here")
    bad = httpx.post(fast.url + "/api/chat", content=b"{nope", timeout=5)
    assert bad.status_code == 400 and "error" in bad.json()


def _request(prompt: str) -> GenerationRequest:
    return GenerationRequest("llama3", (Message("user", prompt),), GenerationParams(num_predict=3))


async def _generate(url: str) -> list:
    async with OllamaBackend(HostSpec("fast", url, 4)) as backend:
        return await asyncio.gather(*(backend.generate(_request(f"a b c d {i}")) for i in range(8)))


def test_evalflows_client_generates_against_it(fast: FastStandIn) -> None:
    results = asyncio.run(_generate(fast.url))
    assert [r.text for r in results] == ["a b c"] * 8
    assert {r.done_reason for r in results} == {"length"}
    assert all(r.eval_count == 3 and r.ttft_s is not None for r in results)
    assert fast.stats.requests == 8


def test_it_runs_as_a_process_with_the_same_counters() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = StandInProcess(port, slots=2, latency_ms=1, models=["a:1"], fast=True).start()
    try:
        reply = httpx.post(
            process.url + "/api/chat",
            json={"model": "a:1", "messages": USER, "stream": False},
            timeout=10,
        ).json()
        stats = process.stats(spans=True)
        zeroed = process.reset_stats()
    finally:
        process.stop()
    assert reply["message"]["content"] == USER[0]["content"]
    assert (stats["requests"], stats["slots"], len(stats["spans"])) == (1, 2, 1)
    assert stats["cpu_s"] > 0
    assert zeroed["requests"] == 0
