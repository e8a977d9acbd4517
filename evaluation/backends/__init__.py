"""Model servers behind one interface: Ollama's native API, OpenAI-compatible servers
and the simulated backend; ``make_backend`` picks one from a HostSpec."""

from __future__ import annotations

from typing import Any

from evaluation.backends.base import (
    Backend,
    DoneReason,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
)
from evaluation.backends.ollama import LoadedModel, OllamaBackend
from evaluation.backends.openai_compat import OpenAICompatBackend
from evaluation.backends.retry import RetryPolicy, embed_with_retries, generate_with_retries
from evaluation.errors import SpecError
from evaluation.spec import HostSpec, Limits

__all__ = [
    "Backend",
    "DoneReason",
    "GenerationRequest",
    "GenerationResult",
    "LoadedModel",
    "ModelInfo",
    "OllamaBackend",
    "OpenAICompatBackend",
    "RetryPolicy",
    "embed_with_retries",
    "generate_with_retries",
    "make_backend",
]


def make_backend(host: HostSpec, limits: Limits, **kw: Any) -> Backend:
    """The backend for ``host.kind``; HTTP backends take their timeouts from ``limits``,
    extra keywords go to the constructor (e.g. ``client=`` or the simulated ``suites=``)."""
    if host.kind == "ollama":
        return OllamaBackend(host, **_timeouts(limits), **kw)
    if host.kind == "openai":
        return OpenAICompatBackend(host, **_timeouts(limits), **kw)
    if host.kind == "simulated":
        from evaluation.backends.simulated import SimulatedBackend

        return SimulatedBackend(host, **kw)
    raise SpecError(f"unknown backend kind {host.kind!r}", field="hosts.kind")


def _timeouts(limits: Limits) -> dict[str, float]:
    return {
        "timeout_s": limits.request_timeout_s,
        "first_request_timeout_s": limits.first_request_timeout_s,
    }
