"""Asking the servers what a run really ran with: each model's digest and quantisation
(Ollama ``/api/tags``, already in the preflight's answer), the server's version (Ollama
``/api/version``) and the context length the loaded model got (Ollama ``/api/ps``:
Ollama picks a default ``num_ctx`` by GPU memory; llama.cpp's ``/props``). OpenAI-
compatible servers name their models only; the simulated backend says what its docs
say (digest: sha256 of the name, Q4_K_M)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from evaluation.backends.base import Backend, ModelInfo
from evaluation.errors import BackendError
from evaluation.run._telemetry import local_hosts
from evaluation.series._series import ModelRan
from evaluation.spec import HostSpec

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
    load, cpus = machine_load(backend.host)
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
            machine_load=load,
            machine_cpus=cpus,
        )
        for name, info in models.items()
    ]


def machine_load(host: HostSpec) -> tuple[float | None, int | None]:
    """For a host on the machine this process runs on (``local_hosts``: a loopback
    address or its own name), that machine's 1-minute load average now (the run's
    generation just ended) and its CPUs: a server there shares them with whatever else
    runs. (None, None) for a host elsewhere, whose machine's load is not known here, and
    where the system does not say."""
    if not local_hosts([host]):
        return None, None
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None, None
    return round(load, 2), os.cpu_count()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _ask(method: object) -> object:
    if method is None:
        return None
    try:
        return await asyncio.wait_for(method(), QUESTION_TIMEOUT_S)  # type: ignore[operator]
    except (BackendError, OSError, ValueError, TimeoutError):
        return None
