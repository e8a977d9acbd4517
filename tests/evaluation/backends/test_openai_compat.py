"""OpenAICompatBackend against the stand-in's /v1 routes and an in-memory transport."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from evaluation.backends import GenerationRequest, OpenAICompatBackend
from evaluation.errors import (
    BackendOverloaded,
    BackendRejected,
    BackendServerError,
    BackendUnavailable,
    ModelNotFound,
    NoAPIAtURL,
    PromptTooLong,
)
from evaluation.spec import GenerationParams, HostSpec
from evaluation.suites import Message
from tests.support.ollama_wire import BUSY_MESSAGE
from tests.support.standin_ollama import StandIn

pytestmark = pytest.mark.anyio

PROMPT = "list four prime numbers below twenty"


def request(model: str = "llama3:latest", **params) -> GenerationRequest:
    return GenerationRequest(model, (Message("user", PROMPT),), GenerationParams(**params))


async def test_streamed_completion_with_usage_and_timings(standin: StandIn) -> None:
    standin.reconfigure(latency_ms=40.0)
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        result = await backend.generate(request())
    assert result.text == PROMPT
    assert result.done_reason == "stop"
    assert result.prompt_eval_count == len(PROMPT.split())
    assert result.eval_count == len(PROMPT.split())
    assert result.ttft_s is not None
    assert 0.005 < result.ttft_s < result.latency_s
    assert result.eval_duration_ns == 0  # not reported by this API
    assert result.tokens_per_s is None


async def test_the_first_requests_latency_includes_the_models_load(standin: StandIn) -> None:
    """As docs/running-for-real.md says: a server that loads a model on its first request
    (llama-cpp-python with several models) makes that request's latency the load's too,
    and this API reports no load time (a newcomer's p95 of 5 cases was 12.4 s, the
    median 1.4 s). Nothing is warmed first or taken out of the latency."""
    standin.reconfigure(load_ms=300.0, latency_ms=0.0)
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        cold = await backend.generate(request())
        await backend.generate(request())
    assert cold.latency_s >= 0.3 and cold.load_duration_ns == 0
    assert standin.stats.requests == 2 and standin.stats.loads["llama3:latest"] == 1


async def test_finish_reason_length_is_truncation(standin: StandIn) -> None:
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        result = await backend.generate(request(num_predict=2))
    assert result.done_reason == "length"
    assert result.truncated
    assert result.text == "list four"
    assert result.eval_count == 2


async def test_parameters_map_onto_the_openai_request(standin: StandIn) -> None:
    params = {"temperature": 0.3, "top_p": 0.8, "seed": 11, "top_k": 20, "num_ctx": 4096}
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        await backend.generate(request(num_predict=77, **params))
    body = standin.stats.last_request
    assert body is not None
    assert body["max_tokens"] == 77
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.3, 0.8, 11)
    assert "top_k" not in body and "num_ctx" not in body and "options" not in body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": PROMPT}]


async def test_stop_sequences_are_sent_as_stop_and_end_the_output(standin: StandIn) -> None:
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        result = await backend.generate(request(stop=(" below",)))
    assert standin.stats.last_request is not None
    assert standin.stats.last_request["stop"] == [" below"]
    assert result.text == "list four prime numbers" and result.done_reason == "stop"


async def test_unset_sampling_parameters_are_not_sent(standin: StandIn) -> None:
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        await backend.generate(request())
    body = standin.stats.last_request
    assert body is not None
    assert not {"temperature", "top_p", "seed", "stop"} & set(body)


async def test_models_and_preflight_use_exact_ids(standin: StandIn) -> None:
    async with OpenAICompatBackend(standin.host(name="vllm-1", kind="openai")) as backend:
        names = [m.name for m in await backend.list_models()]
        found = await backend.preflight(["qwen2.5:0.5b"])
        with pytest.raises(ModelNotFound) as caught:
            await backend.preflight(["llama3"])  # no Ollama-style name matching here
    assert names == ["llama3:latest", "qwen2.5:0.5b"]
    assert found["qwen2.5:0.5b"].name == "qwen2.5:0.5b"
    assert caught.value.available == names
    assert "vllm-1" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "error", "text"),
    [
        ("busy", BackendOverloaded, BUSY_MESSAGE),
        ("server_error", BackendServerError, "injected fault"),
        ("bad_request", BackendRejected, "injected fault"),
        ("error_line", BackendServerError, "injected fault"),
        ("drop", BackendUnavailable, "): peer closed connection"),
    ],
)
async def test_faults_map_through_the_same_taxonomy(
    standin: StandIn, kind: str, error: type, text: str
) -> None:
    standin.set_fault(kind)
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        with pytest.raises(error) as caught:
            await backend.generate(request())
    assert type(caught.value) is error
    assert text in str(caught.value)


async def test_unknown_model_is_model_not_found(standin: StandIn) -> None:
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        with pytest.raises(ModelNotFound, match='model "ghost" not found'):
            await backend.generate(request(model="ghost"))


async def test_a_stream_cut_at_once_reports_the_servers_status_and_reason(
    standin: StandIn,
) -> None:
    """Issue 27: an embedding model asked to chat on llama-cpp-python's server failed with
    IncompleteStream ("the stream ended before 'data: [DONE]'") while the server answers
    HTTP 500 'AssertionError: Memory is not initialized': the status and reason are shown."""
    standin.reconfigure(chat_fails={"llama3:latest": "AssertionError: Memory is not initialized"})
    async with OpenAICompatBackend(standin.host(kind="openai")) as backend:
        with pytest.raises(BackendServerError) as caught:
            await backend.generate(request())
    assert caught.value.status_code == 500
    assert "HTTP 500" in str(caught.value)
    assert "AssertionError: Memory is not initialized" in str(caught.value)
    assert "IncompleteStream" not in str(caught.value)


def _sse(*events: object) -> bytes:
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n"
        for e in events
    )


def _mock(body: bytes, status: int = 200) -> OpenAICompatBackend:
    def handler(_: httpx.Request) -> httpx.Response:
        kind = "text/event-stream" if status == 200 else "application/json"
        return httpx.Response(status, content=body, headers={"content-type": kind})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAICompatBackend(HostSpec(name="m", url="http://m", kind="openai"), client=client)


def _delta(content: str, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


async def test_llama_cpp_timings_become_durations() -> None:
    final = {
        **_delta("", "stop"),
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
        "timings": {"prompt_ms": 25.5, "predicted_ms": 60.0},
    }
    body = b": keep-alive comment\n\n" + _sse(_delta("a"), _delta(" b c"), final, b"[DONE]")
    result = await _mock(body).generate(request())
    assert result.text == "a b c"
    assert (result.prompt_eval_count, result.eval_count) == (12, 3)
    assert result.prompt_eval_duration_ns == 25_500_000
    assert result.eval_duration_ns == 60_000_000
    assert result.tokens_per_s == pytest.approx(50.0)


async def test_a_stream_without_done_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match=r"\[DONE\]"):
        await _mock(_sse(_delta("a"), _delta("", "stop"))).generate(request())


async def test_a_vllm_style_error_event_is_a_server_error() -> None:
    body = _sse(_delta("a"), {"object": "error", "message": "engine died"}, b"[DONE]")
    with pytest.raises(BackendServerError, match="engine died"):
        await _mock(body).generate(request())


async def test_what_no_database_stores_in_a_reply_becomes_the_replacement_character() -> None:
    """Newcomers' S2 and S3: a reply holding a lone surrogate (JSON's "\\ud800") or a NUL
    failed the run when its chunk was stored (UnicodeEncodeError on both databases;
    PostgreSQL refuses NUL), and every resume. Each becomes U+FFFD where the reply enters;
    a pair sent as two escapes in two chunks is joined into its character."""
    deltas = ("lone \ud800 ", "\ud83d", "\ude00", " nul\x00end", "")
    body = _sse(*[_delta(d) for d in deltas[:-1]], _delta("", "stop"), b"[DONE]")
    assert b"\\ud800" in body and b"\\u0000" in body  # escapes on the wire, as servers write
    result = await _mock(body).generate(request())
    assert result.text == "lone \ufffd \U0001f600 nul\ufffdend"
    assert result.text.encode()  # UTF-8 has it: every database, log and export does


async def test_a_servers_words_and_model_names_are_made_storable_too() -> None:
    """An error's message is stored with the generation it failed; a model list is
    stored by ``record_models``: a "\\ud800" or NUL there failed the run as one in a reply."""
    refusal = json.dumps({"error": {"message": "bad \ud800 token\x00"}}).encode()
    with pytest.raises(BackendRejected) as caught:
        await _mock(refusal, status=400).generate(request())
    # the NUL, a control character, is shown escaped as every one in a server's words (S5)
    assert str(caught.value).endswith("HTTP 400 for model 'llama3:latest': bad \ufffd token\\x00")
    listing = {"data": [{"id": "odd\udcff", "owned_by": "me\x00"}]}
    (info,) = await _mock(json.dumps(listing).encode()).list_models()
    assert (info.name, info.owned_by) == ("odd\ufffd", "me\ufffd")


async def test_without_usage_each_delta_is_a_token_timed_by_the_client() -> None:
    # llama-cpp-python's server ignores stream_options: no usage, no timings. The
    # prompt's count is unknown (None), not 0.
    body = _sse(_delta("a"), _delta("b"), _delta("c"), _delta("", "length"), b"[DONE]")
    result = await _mock(body).generate(request())
    assert result.text == "abc"
    assert (result.prompt_eval_count, result.eval_count) == (None, 3)
    assert result.eval_duration_ns > 0
    assert result.tokens_per_s is not None


async def test_deltas_read_in_one_burst_after_a_stall_keep_the_clients_speed(monkeypatch) -> None:
    """CI's tiny model on a loaded machine: the 12 deltas were read in one burst
    (microseconds apart) after a 0.27 s wait, and the stream's end came later (here
    0.5 s: the client or the server stalled). Timed between the deltas, 12 tokens in
    0.1 ms were impossible for the window they came in and dropped; timed from the first
    delta to the stream's end, the client's own figure spans that window: kept."""
    from evaluation.backends import openai_compat

    burst = [0.27 + 1e-5 * i for i in range(12)]
    clock = iter([0.0, *burst, 0.77])  # the request sent, each content delta, [DONE]
    monkeypatch.setattr(openai_compat, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    body = _sse(*[_delta("t") for _ in burst], _delta("", "length"), b"[DONE]")
    result = await _mock(body).generate(request())
    assert (result.ttft_s, result.latency_s, result.eval_count) == (0.27, 0.77, 12)
    assert result.eval_duration_ns == round(0.5 / 11 * 12 * 1e9)
    assert result.tokens_per_s == pytest.approx(22.0)


async def test_usage_without_timings_keeps_durations_unknown() -> None:
    final = {**_delta("", "stop"), "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    result = await _mock(_sse(_delta("a b"), _delta(" c"), final, b"[DONE]")).generate(request())
    assert result.eval_count == 7
    assert result.eval_duration_ns == 0


# The body llama-cpp-python's server sends (llama_cpp/server/errors.py).
CONTEXT_ERROR = {
    "error": {
        "message": "This model's maximum context length is 64 tokens. However, you requested "
        "120 tokens (104 in the messages, 16 in the completion). Please reduce the length of "
        "the messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


async def test_context_length_exceeded_is_prompt_too_long_and_final() -> None:
    backend = _mock(json.dumps(CONTEXT_ERROR).encode(), status=400)
    with pytest.raises(PromptTooLong) as caught:
        await backend.generate(request())
    error = caught.value
    assert isinstance(error, BackendRejected) and not error.retryable
    assert (error.host, error.model, error.status_code) == ("m", "llama3:latest", 400)
    text = str(error)
    assert "\n" not in text
    assert "prompt too long for the server's context window" in text
    assert "not retried" in text
    assert "maximum context length is 64 tokens" in text


async def test_other_400s_stay_plain_rejections() -> None:
    body = {"error": {"message": "bad temperature", "code": "invalid_value"}}
    with pytest.raises(BackendRejected, match="bad temperature") as caught:
        await _mock(json.dumps(body).encode(), status=400).generate(request())
    assert type(caught.value) is BackendRejected


async def test_a_decode_time_impossible_for_the_requests_latency_gives_no_tokens_per_s() -> None:
    """A newcomer's llama.cpp server said 6 tokens took 0.119 ms of a 5.6 s request:
    50,262 tokens/s, stored, and it moved the series' tokens/s watch. A decode speed
    beyond DECODE_WALL_FACTOR times the request's wall rate (tokens / latency) is none;
    one within it is the server's (docs/results.md)."""
    from evaluation.backends.base import DECODE_WALL_FACTOR, GenerationResult

    def result(eval_ns: int, latency_s: float) -> GenerationResult:
        return GenerationResult(
            "a b c d e f", "stop", latency_s, latency_s, eval_count=6, eval_duration_ns=eval_ns
        )

    assert result(119_375, 5.589).tokens_per_s is None
    assert result(338_162_591, 5.691).tokens_per_s == pytest.approx(17.74, abs=0.01)
    # the bound itself: 1000 x the wall rate of 6 tokens in 6 s is 1000 tokens/s
    assert DECODE_WALL_FACTOR == 1000
    assert result(6_000_000, 6.0).tokens_per_s == pytest.approx(1000.0)
    assert result(5_999_000, 6.0).tokens_per_s is None
    # no latency measured (a pipeline's mixed calls): the server's figure stands
    unmeasured = GenerationResult("a", "stop", None, None, eval_count=6, eval_duration_ns=119_375)
    assert unmeasured.tokens_per_s == pytest.approx(50_261.8, abs=0.1)


async def test_a_dashboard_answering_200_is_no_api_at_the_url_named_by_its_title() -> None:
    """The newcomer's F3: a port serving a 200 HTML page was refused as "not JSON:
    '<html><head><title>My Dashboard</title>...'" under "start the OpenAI-compatible
    server there" (something serves there); now as a 404 page is: its title, the port."""
    page = "<html><head><title>My Dashboard</title></head><body>hi</body></html>"

    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=page, headers={"Content-Type": "text/html"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    host = HostSpec(name="fast", url="http://h:8000", kind="openai")
    async with OpenAICompatBackend(host, client=client) as backend:
        with pytest.raises(NoAPIAtURL) as caught:
            await backend.list_models()
    await client.aclose()
    assert str(caught.value) == (
        "fast: GET http://h:8000/v1/models answered an HTML page titled 'My Dashboard': "
        "no OpenAI-compatible API at this url; check the port (another web server answers "
        "there)"
    )


async def test_a_host_name_that_does_not_resolve_is_said_so_and_not_told_to_start(
    monkeypatch,
) -> None:
    """The newcomer's F3: "[Errno -2] Name or service not known; start the
    OpenAI-compatible server there": the library's words, and nothing to start."""
    from evaluation.run import _preflight

    def answer(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=req)

    async def once(backend):  # no retries' waits
        return await backend.list_models()

    monkeypatch.setattr(_preflight, "list_models_with_retries", once)
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    host = HostSpec(name="fast", url="http://gpu-bx:8000", kind="openai")
    async with OpenAICompatBackend(host, client=client) as backend:
        check = await _preflight._check(backend, ["m1"])
    await client.aclose()
    said = _preflight._unreachable("m1", [host], {host: check})
    assert "(GET http://gpu-bx:8000/v1/models: no such host name: gpu-bx does not resolve)" in said
    assert "check the host name in the url" in said
    assert "start " not in said and "Errno" not in said


async def test_an_answer_that_is_not_a_stream_is_said_as_what_came() -> None:
    # ncfast: a server answering `stream: true` with the whole reply as one JSON body
    # read "the stream ended before 'data: [DONE]'", as if a stream had broken.
    body = json.dumps({"object": "chat.completion", "choices": [{"message": {"content": "hi"}}]})

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=body.encode(), headers={"content-type": "application/json"}
        )

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    host = HostSpec(name="m", url="http://m", kind="openai")
    with pytest.raises(BackendUnavailable) as caught:
        await OpenAICompatBackend(host, client=client).generate(request())
    said = str(caught.value)
    assert "no event stream: the server answered an application/json body " in said, said
    assert """('{"object": "chat.completion", "choices": """ in said, said
    assert "where a stream of 'data:' events was asked (stream: true)" in said, said
    assert "[DONE]" not in said
