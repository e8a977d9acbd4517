"""The stand-in server speaks Ollama's wire format and its controls do what they say."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.evaluation.backends.conftest import FAST
from tests.support.ollama_wire import BUSY_MESSAGE
from tests.support.standin_ollama import StandIn

ROOT = Path(__file__).resolve().parents[3]
USER = [{"role": "user", "content": "one two three four five six"}]


def chat(standin: StandIn, **body) -> httpx.Response:
    payload = {"model": "llama3", "messages": USER, **body}
    return httpx.post(standin.url + "/api/chat", json=payload, timeout=10)


def lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_informational_endpoints(standin: StandIn) -> None:
    with httpx.Client(base_url=standin.url) as client:
        assert client.get("/").text == "Ollama is running"
        assert client.get("/api/version").json() == {"version": standin.config.version}
        tags = client.get("/api/tags").json()["models"]
        show = client.post("/api/show", json={"model": "llama3"}).json()
        v1 = client.get("/v1/models").json()
        missing = client.post("/api/show", json={"model": "nope"})
        unknown_route = client.get("/api/nothing")
    assert [t["name"] for t in tags] == list(standin.config.models)
    assert set(tags[0]) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert set(tags[0]["details"]) == {
        "parent_model", "format", "family", "families", "parameter_size", "quantization_level",
    }  # fmt: skip
    assert show["details"]["family"] == "llama"
    assert "completion" in show["capabilities"]
    assert show["model_info"]["llama.context_length"] > 0
    assert [m["id"] for m in v1["data"]] == list(standin.config.models)
    assert missing.status_code == 404
    assert unknown_route.status_code == 404


def test_streamed_chat_is_ndjson_with_a_final_chunk_of_counters(standin: StandIn) -> None:
    response = chat(standin, options={"num_predict": 100})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    *chunks, final = lines(response)
    assert len(chunks) == standin.config.chunks
    assert all(c["done"] is False and c["message"]["content"] for c in chunks)
    assert all(c["created_at"].endswith("Z") and c["model"] == "llama3" for c in chunks)
    assert "".join(c["message"]["content"] for c in chunks) == USER[0]["content"]
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int)
    assert final["eval_count"] == 6
    assert final["prompt_eval_count"] == 6


def test_non_streaming_chat_is_one_object(standin: StandIn) -> None:
    body = chat(standin, stream=False, options={"num_predict": 4, "num_ctx": 3}).json()
    assert body["done"] is True
    assert body["message"]["content"] == "one two three four"
    assert body["done_reason"] == "length"
    assert body["eval_count"] == 4
    assert body["prompt_eval_count"] == 3  # the prompt was cut to num_ctx, silently


def test_an_empty_chat_is_a_warm_up_load(standin: StandIn) -> None:
    (final,) = lines(chat(standin, messages=[]))
    assert final["done_reason"] == "load"
    assert standin.stats.loads["llama3:latest"] == 1


def test_error_bodies_are_ollamas(standin: StandIn) -> None:
    not_found = chat(standin, model="ghost:7b")
    assert not_found.status_code == 404
    assert not_found.json() == {"error": 'model "ghost:7b" not found, try pulling it first'}
    no_model = chat(standin, model="")
    assert (no_model.status_code, no_model.json()) == (400, {"error": "model is required"})
    empty = httpx.post(standin.url + "/api/chat", content=b"")
    assert (empty.status_code, empty.json()) == (400, {"error": "missing request body"})
    standin.set_fault("busy")
    busy = chat(standin)
    assert busy.status_code == 503
    exact = b'{"error":"server busy, please try again.  maximum pending requests exceeded"}'
    assert busy.content == exact


def test_an_error_line_mid_stream_arrives_with_status_200(standin: StandIn) -> None:
    standin.set_fault("error_line", message="CUDA error: out of memory", after_chunks=2)
    response = chat(standin)
    assert response.status_code == 200
    received = lines(response)
    assert len(received) == 3
    assert received[-1] == {"error": "CUDA error: out of memory"}


def test_a_dropped_connection_breaks_the_stream(standin: StandIn) -> None:
    standin.set_fault("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        chat(standin)
    assert chat(standin).status_code == 200  # the server itself is fine


def test_faults_follow_their_schedule_and_model(standin: StandIn) -> None:
    standin.set_fault("server_error", times=2, model="qwen2.5:0.5b", message="runner crashed")
    standin.set_fault("bad_request")
    statuses = [
        chat(standin, model=m).status_code
        for m in ("llama3", "qwen2.5:0.5b", "qwen2.5:0.5b", "qwen2.5:0.5b")
    ]
    assert statuses == [400, 500, 500, 200]
    assert standin.stats.faults == {"bad_request": 1, "server_error": 2}
    assert standin.stats.requests_by_model == {"llama3:latest": 1, "qwen2.5:0.5b": 3}


def test_model_switches_count_as_loads(standin: StandIn) -> None:
    for model in ("llama3", "llama3", "qwen2.5:0.5b", "llama3"):
        chat(standin, model=model)
    assert standin.stats.loads == {"llama3:latest": 2, "qwen2.5:0.5b": 1}
    assert standin.stats.model_loads == 3
    resident = httpx.get(standin.url + "/api/ps").json()["models"]
    assert [m["name"] for m in resident] == ["llama3:latest"]

    standin.reset(dataclasses.replace(FAST, max_loaded_models=2))
    for model in ("llama3", "qwen2.5:0.5b", "llama3", "qwen2.5:0.5b"):
        chat(standin, model=model)
    assert standin.stats.model_loads == 2


def test_a_load_takes_the_models_load_time(standin: StandIn) -> None:
    standin.reset(dataclasses.replace(FAST, load_ms_by_model={"qwen2.5:0.5b": 150.0}))
    start = time.perf_counter()
    final = lines(chat(standin, model="qwen2.5:0.5b"))[-1]
    assert time.perf_counter() - start >= 0.15
    assert final["load_duration"] >= 150e6
    assert lines(chat(standin, model="qwen2.5:0.5b"))[-1]["load_duration"] == 0


async def _concurrent(standin: StandIn, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=standin.url, limits=limits, timeout=10) as client:
        body = {"model": "llama3", "messages": USER}
        return await asyncio.gather(*(client.post("/api/chat", json=body) for _ in range(n)))


def test_requests_beyond_slots_wait_and_in_flight_peaks_are_counted(standin: StandIn) -> None:
    standin.reset(dataclasses.replace(FAST, slots=2, latency_ms=80.0))
    start = time.perf_counter()
    responses = asyncio.run(_concurrent(standin, 6))
    elapsed = time.perf_counter() - start
    assert [r.status_code for r in responses] == [200] * 6
    assert elapsed >= 3 * 0.08  # three rounds of two
    assert standin.stats.max_in_flight == 6
    # The server counts a request out after its last byte is sent, which the client may
    # read first: wait for the count (bounded), not for a moment.
    deadline = time.monotonic() + 10
    while standin.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert standin.stats.in_flight == 0


def test_beyond_slots_plus_queue_the_server_is_busy(standin: StandIn) -> None:
    standin.reset(dataclasses.replace(FAST, slots=1, max_queue=1, latency_ms=300.0))
    responses = asyncio.run(_concurrent(standin, 5))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503, 503, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json() == {"error": BUSY_MESSAGE}
    assert standin.stats.overloaded == 3


def test_a_hang_ends_when_the_client_gives_up(standin: StandIn) -> None:
    standin.set_fault("hang", hang_s=30.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            standin.url + "/api/chat", json={"model": "llama3", "messages": USER}, timeout=0.2
        )
    deadline = time.monotonic() + 2.0
    while standin.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert standin.stats.in_flight == 0


def test_stop_and_start_keep_the_port(standin: StandIn) -> None:
    port = standin.port
    standin.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(standin.url + "/api/version")
    standin.start()
    assert standin.port == port
    assert httpx.get(standin.url + "/api/version").status_code == 200


def test_openai_route_streams_sse_with_usage_when_asked(standin: StandIn) -> None:
    body = {"model": "llama3", "messages": USER, "stream": True, "max_tokens": 2}
    plain = httpx.post(standin.url + "/v1/chat/completions", json=body).text
    usage_body = {**body, "stream_options": {"include_usage": True}}
    with_usage = httpx.post(standin.url + "/v1/chat/completions", json=usage_body).text
    events = [e.removeprefix("data: ") for e in with_usage.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    final, usage = json.loads(events[-3]), json.loads(events[-2])
    assert final["choices"][0]["finish_reason"] == "length"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    assert '"usage"' not in plain
    whole = httpx.post(standin.url + "/v1/chat/completions", json={**body, "stream": False})
    assert whole.json()["object"] == "chat.completion"
    assert whole.json()["choices"][0]["message"]["content"] == "one two"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_runs_as_a_separate_process() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "tests.support.standin_ollama", "--port", str(port),
               "--slots", "2", "--latency-ms", "1", "--models", "a:1,b:2"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                tags = httpx.get(f"http://127.0.0.1:{port}/api/tags").json()
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/api/chat",
            json={"model": "b:2", "messages": USER, "stream": False},
        ).json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [m["name"] for m in tags["models"]] == ["a:1", "b:2"]
    assert reply["message"]["content"] == USER[0]["content"]
