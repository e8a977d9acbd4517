"""The package's public surface and the backend factory."""

from __future__ import annotations

import importlib.util

import pytest

import evaluation.backends as backends
from evaluation.backends import OllamaBackend, OpenAICompatBackend, make_backend
from evaluation.errors import SpecError
from evaluation.spec import HostSpec, Limits

pytestmark = pytest.mark.anyio


def test_exported_names() -> None:
    assert sorted(backends.__all__) == [
        "Backend",
        "DoneReason",
        "GenerationRequest",
        "GenerationResult",
        "LIMIT_PREFIX",
        "LoadedModel",
        "ModelInfo",
        "OllamaBackend",
        "OpenAICompatBackend",
        "RetryPolicy",
        "embed_with_retries",
        "generate_with_retries",
        "host_key",
        "host_limit_name",
        "machine_slot_readings",
        "make_backend",
        "stop_sending",
    ]
    for name in backends.__all__:
        assert getattr(backends, name) is not None


@pytest.mark.parametrize(
    ("kind", "cls"), [("ollama", OllamaBackend), ("openai", OpenAICompatBackend)]
)
async def test_make_backend_uses_the_kind_and_the_limits_timeouts(kind: str, cls: type) -> None:
    host = HostSpec(name="h", url="http://127.0.0.1:1/", kind=kind, slots=3)  # type: ignore
    backend = make_backend(host, Limits(request_timeout_s=7.0, first_request_timeout_s=70.0))
    try:
        assert type(backend) is cls
        assert backend.host is host
        assert backend._timeout.read == 7.0
        assert backend._first_timeout.read == 70.0
    finally:
        await backend.aclose()


@pytest.mark.skipif(
    importlib.util.find_spec("evaluation.backends.simulated") is None,
    reason="the simulated backend is not written yet",
)
def test_make_backend_builds_the_simulated_backend_lazily() -> None:
    from evaluation.backends.simulated import SimulatedBackend

    host = HostSpec(name="sim", url="sim://", kind="simulated")
    backend = make_backend(host, Limits(), time_scale=0.0)
    assert isinstance(backend, SimulatedBackend)


def test_an_unknown_kind_is_a_spec_error() -> None:
    host = HostSpec(name="h", url="http://x", kind="grpc")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="grpc"):
        make_backend(host, Limits())
