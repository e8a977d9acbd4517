"""Checking hosts before a sweep: reachable, and every model present where it should be.

A host that cannot be reached is left out with its reason (others may cover it); a
reachable host that lacks a model it should serve is an error listing what it has; a
model no reachable host serves is an error. All of this happens before any generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from evaluation.backends._preflight import exact_name_key, match_models, ollama_name_key
from evaluation.backends.base import Backend, ModelInfo
from evaluation.errors import BackendError, BackendUnavailable


@dataclass(frozen=True)
class HostCheck:
    models: dict[str, ModelInfo] = field(default_factory=dict)
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.error is None


async def _check(backend: Backend, wanted: list[str]) -> HostCheck:
    try:
        have = await backend.list_models()
    except BackendError as exc:
        if not exc.retryable:
            raise
        return HostCheck(error=f"{type(exc).__name__}: {exc}")
    key = ollama_name_key if backend.host.kind == "ollama" else exact_name_key
    return HostCheck(models=match_models(backend.host, wanted, have, key=key))


async def preflight_hosts(
    backends: Mapping[str, Backend], models: Iterable[str]
) -> dict[str, HostCheck]:
    """Check every host concurrently; raise if some model would have nowhere to run."""
    models = list(dict.fromkeys(models))
    names = list(backends)
    checks = await asyncio.gather(
        *(_check(backends[n], [m for m in models if backends[n].host.serves(m)]) for n in names)
    )
    by_host = dict(zip(names, checks, strict=True))
    for model in models:
        if not any(model in check.models for check in by_host.values()):
            reasons = "; ".join(
                f"{n}: {c.error or 'does not serve it'}" for n, c in by_host.items()
            )
            raise BackendUnavailable(
                f"no reachable host serves model {model!r} ({reasons})", model=model
            )
    return by_host
