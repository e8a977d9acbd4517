"""Asking the servers what a run really ran with: each model's digest and quantisation
(Ollama ``/api/tags``, already in the preflight's answer), the server's version (Ollama
``/api/version``) and the context length the loaded model got (Ollama ``/api/ps``:
Ollama picks a default ``num_ctx`` by GPU memory; llama.cpp's ``/props``). OpenAI-
compatible servers name their models only; the simulated backend says what its docs
say (digest: sha256 of the name, Q4_K_M)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from evaluation.backends.base import Backend, ModelInfo
from evaluation.errors import BackendError
from evaluation.series._series import ModelRan

QUESTION_TIMEOUT_S = 10.0
"""How long a host gets to answer each question. A host that accepts connections and
never answers (one that hung while the run's other hosts did its work) would otherwise
hold a finished run for the backend's whole read timeout per question."""


async def what_ran(
    backends: Mapping[str, Backend], found: Mapping[str, Mapping[str, ModelInfo]]
) -> list[ModelRan]:
    """Per host and model it served (``found``: host -> the preflight's model entries):
    what the server says. A question the server cannot answer leaves the field empty;
    it never fails the run."""
    answers = await asyncio.gather(
        *(_host(backends[h], models) for h, models in found.items() if h in backends)
    )
    return [m for host in answers for m in host]


async def _host(backend: Backend, models: Mapping[str, ModelInfo]) -> list[ModelRan]:
    version, loaded, window = await asyncio.gather(
        *(_ask(getattr(backend, q, None)) for q in ("version", "loaded_models", "context_window"))
    )
    contexts: dict[str, int] = {}
    for entry in loaded or ():
        if isinstance(getattr(entry, "context_length", None), int):
            contexts[entry.name] = entry.context_length
    return [
        ModelRan(
            host=backend.host.name,
            model=name,
            kind=backend.host.kind,
            digest=info.digest,
            quantization=info.quantization,
            server_version=str(version or ""),
            context_length=contexts.get(name, contexts.get(info.name, _int(window))),
        )
        for name, info in models.items()
    ]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _ask(method: object) -> object:
    if method is None:
        return None
    try:
        return await asyncio.wait_for(method(), QUESTION_TIMEOUT_S)  # type: ignore[operator]
    except (BackendError, OSError, ValueError, TimeoutError):
        return None
