"""A host's key (evaluation/backends/_auth.py): named by ``api_key_env`` in the spec,
read from the environment, sent as ``Authorization: Bearer`` to that host only; a
401/403 is ``KeyRefused`` saying what was sent, and the key is masked in every error."""

from __future__ import annotations

import asyncio

import pytest

from evaluation.backends import make_backend
from evaluation.backends._auth import auth_headers, credentials_sent
from evaluation.backends.base import GenerationRequest
from evaluation.errors import BackendRejected, KeyRefused, SpecError
from evaluation.spec import GenerationParams, HostSpec, Limits
from evaluation.suites import Message
from tests.support.standin_ollama import StandInConfig, running_standin

KEY = "sk-unit-Hn6r"


def host(url: str, kind: str = "openai", variable: str | None = "UNIT_KEY") -> HostSpec:
    return HostSpec("vllm", url, 1, kind, None, variable)  # type: ignore[arg-type]


def test_the_key_comes_from_the_named_variable_and_never_from_the_spec(monkeypatch) -> None:
    monkeypatch.setenv("UNIT_KEY", f"  {KEY}\n")  # pasted with its newline
    assert auth_headers(host("http://a:1")) == {"Authorization": f"Bearer {KEY}"}
    assert auth_headers(host("http://a:1", variable=None)) == {}
    assert KEY not in repr(host("http://a:1"))  # the spec's host holds the name only
    assert credentials_sent(host("http://a:1")) == "the key from $UNIT_KEY"
    assert credentials_sent(host("http://u:p@a:1", variable=None)).startswith("the user and")
    monkeypatch.setenv("UNIT_KEY", "")
    with pytest.raises(SpecError, match="environment variable UNIT_KEY is not set"):
        auth_headers(host("http://a:1"))


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_a_keyed_host_is_sent_the_key_and_refuses_another_in_one_line(
    monkeypatch, kind: str
) -> None:
    config = StandInConfig(models=("m:1b",), api_key=KEY)
    with running_standin(config) as standin:
        monkeypatch.setenv("UNIT_KEY", KEY)

        async def generate(spec: HostSpec) -> str:
            backend = make_backend(spec, Limits())
            try:
                request = GenerationRequest(
                    "m:1b", (Message("user", "hello there"),), GenerationParams(num_predict=4)
                )
                return (await backend.generate(request)).text
            finally:
                await backend.aclose()

        assert asyncio.run(generate(host(standin.url, kind))) == "hello there"
        assert standin.stats.refused == 0
        with pytest.raises(KeyRefused) as missing:
            asyncio.run(generate(host(standin.url, kind, variable=None)))
        assert "vllm: HTTP 401" in str(missing.value)
        assert "the host wants a key and none was sent" in str(missing.value)
        monkeypatch.setenv("UNIT_KEY", "sk-wrong-Lm2c")
        with pytest.raises(KeyRefused) as wrong:
            asyncio.run(generate(host(standin.url, kind)))
        assert "the host refused the key from $UNIT_KEY" in str(wrong.value)
        assert "sk-wrong-Lm2c" not in str(wrong.value) and "\n" not in str(wrong.value)


def test_a_server_that_echoes_the_key_has_it_masked(monkeypatch) -> None:
    monkeypatch.setenv("UNIT_KEY", KEY)
    with running_standin(StandInConfig(models=("m:1b",))) as standin:
        standin.set_fault(
            "bad_request", message=f"bad request; the key was {KEY} ({{authorization}})"
        )

        async def generate() -> None:
            backend = make_backend(host(standin.url), Limits())
            try:
                request = GenerationRequest(
                    "m:1b", (Message("user", "hi"),), GenerationParams(num_predict=4)
                )
                await backend.generate(request)
            finally:
                await backend.aclose()

        with pytest.raises(BackendRejected) as rejected:
            asyncio.run(generate())
    assert "the key was ***" in str(rejected.value) and KEY not in str(rejected.value)


def test_a_keyed_openai_server_on_a_host_without_kind_is_told_about_the_key(monkeypatch) -> None:
    """The re-check's F3: vLLM's or llama.cpp's server started with a key answers
    Ollama's /api/tags 404 whatever the key (its key guards /v1 only) and /v1/models 401;
    a host without `kind:` (Ollama's) was told 'no Ollama or OpenAI-compatible API at
    this url; check the port'. It is the key's refusal, as with `kind: openai`."""
    config = StandInConfig(models=("m:1b",), api_key=KEY, openai_only=True)
    with running_standin(config) as standin:

        async def listing(spec: HostSpec) -> None:
            backend = make_backend(spec, Limits())
            try:
                await backend.list_models()
            finally:
                await backend.aclose()

        with pytest.raises(KeyRefused) as missing:
            asyncio.run(listing(host(standin.url, "ollama", variable=None)))
        assert "the host wants a key and none was sent" in str(missing.value)
        monkeypatch.setenv("UNIT_KEY", "sk-wrong-Lm2c")
        with pytest.raises(KeyRefused) as wrong:
            asyncio.run(listing(host(standin.url, "ollama")))
        assert str(wrong.value).startswith("vllm: HTTP 401")
        assert "the host refused the key from $UNIT_KEY" in str(wrong.value)
        assert "sk-wrong-Lm2c" not in str(wrong.value)
