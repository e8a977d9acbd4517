"""OllamaBackend against the stand-in server (real HTTP) and an in-memory transport."""

from __future__ import annotations

import httpx
import pytest

from evaluation.backends import GenerationRequest, OllamaBackend
from evaluation.errors import (
    BackendOverloaded,
    BackendRejected,
    BackendServerError,
    BackendUnavailable,
    ModelNotFound,
    NoAPIAtURL,
    NotOllamaAPI,
)
from evaluation.spec import DEFAULT_NUM_PREDICT, GenerationParams, HostSpec
from evaluation.suites import Message
from tests.support.ollama_wire import BUSY_MESSAGE
from tests.support.standin_ollama import StandIn

pytestmark = pytest.mark.anyio

PROMPT = "name the three primary colours of light in order please"


def request(model: str = "llama3", prompt: str = PROMPT, **params) -> GenerationRequest:
    messages = (Message("system", "be brief"), Message("user", prompt))
    return GenerationRequest(model, messages, GenerationParams(**params))


async def test_streamed_generation_records_text_counters_and_timings(standin: StandIn) -> None:
    # 200 ms: the first token 50 ms in, the rest 150 ms later; at 40 ms the 30 ms between
    # them was once read as 19.5 ms under load (the client read the first chunk late)
    standin.reconfigure(latency_ms=200.0, chunks=4)
    async with OllamaBackend(standin.host()) as backend:
        result = await backend.generate(request())

    assert result.text == PROMPT  # the stand-in echoes the last user message
    assert result.done_reason == "stop"
    assert not result.truncated
    assert result.prompt_eval_count == len(("be brief " + PROMPT).split())
    assert result.eval_count == len(PROMPT.split())
    assert result.eval_duration_ns > 0
    assert result.prompt_eval_duration_ns > 0
    assert result.total_duration_ns >= result.eval_duration_ns + result.prompt_eval_duration_ns
    assert result.tokens_per_s == pytest.approx(result.eval_count / result.eval_duration_ns * 1e9)
    # the first token comes after a quarter of the latency, the rest after the whole of it
    assert result.ttft_s is not None
    assert 0.005 < result.ttft_s < result.latency_s
    assert result.latency_s - result.ttft_s > 0.02
    assert result.simulated is False


async def test_hitting_num_predict_is_flagged_as_length(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        result = await backend.generate(request(num_predict=3))
    assert result.done_reason == "length"
    assert result.truncated
    assert result.eval_count == 3
    assert result.text == " ".join(PROMPT.split()[:3])


async def test_request_body_always_carries_num_predict(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        await backend.generate(request())
        default_body = standin.stats.last_request
        await backend.generate(request(temperature=0.2, seed=7, num_ctx=2048, num_predict=64))
        tuned_body = standin.stats.last_request

    assert default_body is not None and tuned_body is not None
    assert default_body["options"] == {"num_predict": DEFAULT_NUM_PREDICT}
    assert default_body["stream"] is True
    assert default_body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": PROMPT},
    ]
    assert tuned_body["options"] == {
        "temperature": 0.2,
        "seed": 7,
        "num_ctx": 2048,
        "num_predict": 64,
    }


async def test_stop_sequences_go_in_options_and_end_the_output(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        result = await backend.generate(request(stop=(" of light", " colours")))
    assert standin.stats.last_request is not None
    assert standin.stats.last_request["options"]["stop"] == [" of light", " colours"]
    assert result.text == "name the three primary" and result.done_reason == "stop"


async def test_preflight_matches_names_as_ollama_does(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        found = await backend.preflight(["llama3", "QWEN2.5:0.5b"])
    assert found["llama3"].name == "llama3:latest"
    assert found["llama3"].family == "llama"
    assert found["llama3"].parameter_size == "8.0B"
    assert found["llama3"].quantization == "Q4_K_M"
    assert len(found["llama3"].digest) == 64
    assert found["QWEN2.5:0.5b"].name == "qwen2.5:0.5b"


async def test_preflight_names_the_host_and_lists_its_models(standin: StandIn) -> None:
    host = standin.host(name="gpu-7")
    async with OllamaBackend(host) as backend:
        with pytest.raises(ModelNotFound) as caught:
            await backend.preflight(["llama3", "mistral:7b"])
    error = caught.value
    assert error.available == ["llama3:latest", "qwen2.5:0.5b"]
    assert error.host == "gpu-7"
    assert error.model == "mistral:7b"
    assert "gpu-7" in str(error)
    assert "llama3:latest, qwen2.5:0.5b" in str(error)
    assert not error.retryable
    assert standin.stats.requests == 0  # nothing was generated


async def test_unknown_model_at_generation_keeps_the_servers_message(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        with pytest.raises(ModelNotFound) as caught:
            await backend.generate(request(model="phantom"))
    assert caught.value.status_code == 404
    assert 'model "phantom" not found, try pulling it first' in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


async def test_an_openai_only_server_gets_a_hint_to_set_kind_openai(standin: StandIn) -> None:
    """Issue 27: an Ollama host pointed at llama.cpp's server failed with a bare
    'HTTP 404: {"detail":"Not Found"}'; it now says to set `kind: openai`, for sure when
    the server answers /v1/models."""
    standin.reconfigure(openai_only=True)
    async with OllamaBackend(standin.host()) as backend:
        for call in (backend.list_models(), backend.generate(request())):
            with pytest.raises(BackendRejected) as caught:
                await call
            text = str(caught.value)
            assert caught.value.status_code == 404 and not isinstance(caught.value, ModelNotFound)
            assert "HTTP 404" in text and "Not Found" in text
            assert "the server answers /v1/models: it is OpenAI-compatible" in text
            assert "set `kind: openai` on host" in text


async def test_the_hint_for_a_spec_without_hosts_says_what_to_add(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # README's 5-line spec with OLLAMA_HOST at llama.cpp's server: its host 'local' is
    # implicit, so "set `kind: openai` on host 'local'" named a host not in the file.
    from evaluation.spec import default_hosts

    standin.reconfigure(openai_only=True)
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    async with OllamaBackend(default_hosts()[0]) as backend:
        with pytest.raises(BackendRejected) as caught:
            await backend.list_models()
    text = str(caught.value)
    assert "the spec names no hosts (host 'local' is $OLLAMA_HOST's server)" in text
    assert f'`hosts: [{{name: local, url: "{standin.url}", kind: openai, slots: 1}}]`' in text
    assert "set `kind: openai` on host" not in text
    assert "password masked" not in text


async def test_the_hint_to_paste_a_url_whose_password_is_masked_says_so(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newcomer's F10: pasted as printed, the suggested host sent the password
    "***"; `resume with:` lines say "(password masked: put it back)", and so does this."""
    from evaluation.spec import default_hosts

    standin.reconfigure(openai_only=True)
    monkeypatch.setenv("OLLAMA_HOST", standin.url.replace("://", "://u:Pw0rdLEAK@"))
    async with OllamaBackend(default_hosts()[0]) as backend:
        with pytest.raises(BackendRejected) as caught:
            await backend.list_models()
    text = str(caught.value)
    shown = standin.url.replace("://", "://u:***@")
    assert text.endswith(
        f'`hosts: [{{name: local, url: "{shown}", kind: openai, slots: 1}}]` to the spec '
        "(password masked: put it back)"
    )
    assert "Pw0rdLEAK" not in text


async def test_a_404_for_v1_models_too_is_no_model_api_at_the_url() -> None:
    """The newcomer's F14: a URL where another web server answers (a 404 HTML page for
    every path) was told it "may be OpenAI-compatible; set `kind: openai`", which failed
    the same way; the page was quoted whole, over many lines. Now: the URL is wrong,
    one line, the page named by its title, the fix being the port."""
    page = "<!doctype html>\n<html>\n<head><title>Not Found</title></head>\n<body>x</body>\n</html>"

    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text=page)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with OllamaBackend(HostSpec("h", "http://h:1"), client=client) as backend:
        with pytest.raises(NoAPIAtURL) as caught:
            await backend.list_models()
    await client.aclose()
    text = str(caught.value)
    assert text == (
        "h: GET http://h:1/api/tags answered HTTP 404 (an HTML page titled 'Not Found'), "
        "/v1/models too: no Ollama or OpenAI-compatible API at this url; check the port "
        "(another web server answers there)"
    )
    assert not isinstance(caught.value, NotOllamaAPI)


async def test_a_404_whose_v1_models_is_not_answered_in_time_may_be_openai_compatible() -> None:
    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":  # busy: llama-cpp-python lists between generations
            raise httpx.ReadTimeout("no answer", request=req)
        return httpx.Response(404, json={"detail": "Not Found"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with OllamaBackend(HostSpec("h", "http://h:1"), client=client) as backend:
        with pytest.raises(NotOllamaAPI, match=r"may be OpenAI-compatible \(llama.cpp, vLLM\)"):
            await backend.list_models()
    await client.aclose()


@pytest.mark.parametrize(
    ("kind", "error", "retryable", "status", "text"),
    [
        ("busy", BackendOverloaded, True, 503, BUSY_MESSAGE),
        ("server_error", BackendServerError, True, 500, "injected fault"),
        ("bad_request", BackendRejected, False, 400, "injected fault"),
        ("error_line", BackendServerError, True, None, "injected fault"),
        ("drop", BackendUnavailable, True, None, "h1 (model 'llama3'): peer closed connection"),
    ],
)
async def test_each_fault_maps_to_its_error(
    standin: StandIn, kind: str, error: type, retryable: bool, status: int | None, text: str
) -> None:
    standin.set_fault(kind)
    async with OllamaBackend(standin.host(name="h1")) as backend:
        with pytest.raises(error) as caught:
            await backend.generate(request())
        after = await backend.generate(request())  # the fault was for one request only
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.status_code == status
    assert caught.value.host == "h1"
    assert caught.value.model == "llama3"
    assert text in str(caught.value)
    assert caught.value.__cause__ is not None
    assert after.text == PROMPT


async def test_a_hung_request_times_out_as_unavailable(standin: StandIn) -> None:
    standin.set_fault("hang", hang_s=5.0)
    backend = OllamaBackend(standin.host(), timeout_s=0.1, first_request_timeout_s=0.1)
    async with backend:
        with pytest.raises(BackendUnavailable) as caught:
            await backend.generate(request())
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_first_request_to_a_model_may_take_the_load_time(standin: StandIn) -> None:
    standin.reconfigure(load_ms=200.0, latency_ms=0.0)
    backend = OllamaBackend(standin.host(), timeout_s=0.08, first_request_timeout_s=5.0)
    async with backend:
        cold = await backend.generate(request())
        assert cold.load_duration_ns >= 200e6
        standin.reconfigure(latency_ms=400.0)  # prompt evaluation now takes 0.1 s
        with pytest.raises(BackendUnavailable):
            await backend.generate(request())
        # after a timeout the model counts as cold again, so the long timeout applies
        slow = await backend.generate(request())
    assert slow.latency_s > 0.35
    assert standin.stats.loads["llama3:latest"] == 1


async def test_a_host_that_goes_down_and_comes_back(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        await backend.generate(request())
        standin.stop()
        with pytest.raises(BackendUnavailable) as caught:
            await backend.generate(request())
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
        standin.start()
        result = await backend.generate(request())
    assert result.text == PROMPT
    assert standin.stats.loads["llama3:latest"] == 2  # a restart unloads every model


async def test_version_and_loaded_models(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        assert await backend.loaded_models() == []
        await backend.generate(request(model="qwen2.5:0.5b"))
        loaded = await backend.loaded_models()
        version = await backend.version()
    assert version == standin.config.version
    assert [m.name for m in loaded] == ["qwen2.5:0.5b"]
    assert loaded[0].size_vram > 0
    assert loaded[0].context_length == 4096
    assert loaded[0].expires_at.endswith("Z")


async def test_list_models_on_a_dead_host_is_unavailable() -> None:
    host = HostSpec(name="nowhere", url="http://127.0.0.1:9")
    async with OllamaBackend(host, timeout_s=1.0) as backend:
        with pytest.raises(BackendUnavailable) as caught:
            await backend.list_models()
    assert caught.value.host == "nowhere"


def _mock_backend(body: bytes, status: int = 200) -> OllamaBackend:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OllamaBackend(HostSpec(name="mock", url="http://mock"), client=client)


async def test_a_stream_without_its_final_chunk_is_unavailable() -> None:
    chunk = b'{"model":"m","message":{"role":"assistant","content":"hi"},"done":false}\n'
    with pytest.raises(BackendUnavailable, match="final chunk"):
        await _mock_backend(chunk * 2).generate(request(model="m"))


async def test_a_garbled_stream_line_is_a_server_error() -> None:
    with pytest.raises(BackendServerError, match="not JSON"):
        await _mock_backend(b"<html>oops</html>\n").generate(request(model="m"))


async def test_counters_absent_from_the_final_chunk_read_as_zero() -> None:
    body = (
        b'{"message":{"role":"assistant","content":"ok"},"done":false}\n'
        b'{"message":{"role":"assistant","content":""},"done":true}\n'
    )
    result = await _mock_backend(body).generate(request(model="m"))
    assert result.text == "ok"
    assert result.done_reason == ""
    assert (result.eval_count, result.eval_duration_ns, result.load_duration_ns) == (0, 0, 0)
    assert result.tokens_per_s is None


async def test_an_injected_client_is_the_callers_to_close() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    await OllamaBackend(HostSpec(name="mock", url="http://mock"), client=client).aclose()
    assert not client.is_closed
    await client.aclose()


async def test_each_route_is_reached_at_the_hosts_url_every_time() -> None:
    """The backend parses a route's URL once (httpx parsed a string on every request)
    and every request still goes to the host's base URL and path."""
    seen: list[str] = []

    def answer(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return httpx.Response(200, json={"version": "0.6.8"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with OllamaBackend(HostSpec("h", "http://h:1/base/"), client=client) as backend:
        assert [await backend.version() for _ in range(3)] == ["0.6.8"] * 3
    await client.aclose()
    assert seen == ["http://h:1/base/api/version"] * 3
