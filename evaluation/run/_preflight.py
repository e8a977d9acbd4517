"""Checking hosts before a sweep: reachable, and every model present where it should be.

A host that cannot be reached is left out with its reason (others may cover it); a
reachable host that lacks a model it should serve is an error listing what it has; a
model no reachable host serves is an error. All of this happens before any generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from evaluation.backends._preflight import exact_name_key, match_models, ollama_name_key
from evaluation.backends.base import Backend, ModelInfo
from evaluation.backends.retry import list_models_with_retries
from evaluation.errors import BackendError, BackendUnavailable
from evaluation.spec import HostSpec

if TYPE_CHECKING:
    from evaluation.run._sweep import Sweep


@dataclass(frozen=True)
class HostCheck:
    models: dict[str, ModelInfo] = field(default_factory=dict)
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.error is None


async def _check(backend: Backend, wanted: list[str]) -> HostCheck:
    try:
        have = await list_models_with_retries(backend)
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


PREFLIGHT_TIMEOUT_S = 3.0  # per host, before a run: a live host answers /api/tags at once
# The endpoint each kind's preflight asks for its models (what the error names as tried).
_MODELS_PATH = {"ollama": "/api/tags", "openai": "/v1/models"}


def check_before_run(
    sweep: Sweep, *, simulated_only: bool = False, timeout_s: float = PREFLIGHT_TIMEOUT_S
) -> None:
    """Refuse a sweep whose models have nowhere to run, before anything is written or
    Prefect starts: every host is asked for its models (concurrently, ``timeout_s`` each).
    ``simulated_only`` checks only simulated hosts, whose models are known without any
    server (for ``evalflow plan``). Raises ModelNotFound or BackendUnavailable with one
    line saying which URL was tried and what to do."""
    hosts = tuple(h for h in sweep.spec.hosts if h.kind == "simulated" or not simulated_only)
    if hosts:
        asyncio.run(_check_before_run(sweep, hosts, timeout_s))


async def _check_before_run(sweep: Sweep, hosts: tuple[HostSpec, ...], timeout_s: float) -> None:
    from evaluation.run._sweep import open_backends  # sweep imports the backends package

    limits = replace(
        sweep.spec.limits, request_timeout_s=timeout_s, first_request_timeout_s=timeout_s
    )
    backends = open_backends(replace(sweep, spec=replace(sweep.spec, hosts=hosts, limits=limits)))
    try:
        checks = await asyncio.wait_for(
            asyncio.gather(
                *(_check(backends[h.name], _served(h, sweep.required_models)) for h in hosts)
            ),
            timeout_s + 1,
        )
    except TimeoutError:
        checks = [HostCheck(error=f"no answer within {timeout_s:g} s") for _ in hosts]
    finally:
        await asyncio.gather(*(b.aclose() for b in backends.values()))
    by_host = dict(zip(hosts, checks, strict=True))
    for model in sweep.required_models:
        serving = [h for h in hosts if h.serves(model)]
        if serving and not any(model in by_host[h].models for h in serving):
            raise BackendUnavailable(_unreachable(model, serving, by_host), model=model)


def _served(host: HostSpec, models: Iterable[str]) -> list[str]:
    return [m for m in models if host.serves(m)]


def _unreachable(model: str, hosts: list[HostSpec], checks: Mapping[HostSpec, HostCheck]) -> str:
    tried = "; ".join(
        f"GET {h.url}{_MODELS_PATH.get(h.kind, '/api/tags')}: {_reason(checks[h].error)}"
        for h in hosts
    )
    names = ", ".join(f"'{h.name}'" for h in hosts)
    fix = (
        "start Ollama there (`ollama serve`), or point OLLAMA_HOST or the spec's hosts at "
        "where it runs"
        if any(h.kind == "ollama" for h in hosts)
        else "start the server, or fix the spec's hosts"
    )
    return (
        f"cannot reach any host for model '{model}' ({tried}); {fix}; "
        f"`evalflow doctor SPEC` checks every host (host{'s' * (len(hosts) > 1)} {names})"
    )


def _reason(error: str | None) -> str:
    # "BackendUnavailable: local: ConnectError: All connection attempts failed" -> the cause
    return (error or "unknown error").split(": ", 2)[-1]
