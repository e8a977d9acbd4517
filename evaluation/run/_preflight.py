"""Checking hosts before a sweep: reachable, and every model present where it should be.

A host that cannot be reached is left out with its reason (others may cover it); a
reachable host that lacks a model it should serve is an error listing what it has; a
model no reachable host serves is an error. All of this happens before any generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from evaluation.backends._auth import check_api_keys
from evaluation.backends._http import name_unresolved
from evaluation.backends._preflight import (
    FIX_MODELS,
    exact_name_key,
    match_models,
    ollama_name_key,
)
from evaluation.backends.base import Backend, ModelInfo
from evaluation.backends.retry import list_models_with_retries
from evaluation.errors import (
    BackendError,
    BackendOverloaded,
    BackendUnavailable,
    HostBusy,
    KeyRefused,
    ModelNotFound,
    NoAPIAtURL,
    SpecError,
)
from evaluation.spec import HostSpec, SweepSpec
from evaluation.spec._fields import FieldReader

if TYPE_CHECKING:
    from evaluation.run._sweep import Sweep


@dataclass(frozen=True)
class HostCheck:
    models: dict[str, ModelInfo] = field(default_factory=dict)
    error: str | None = None
    busy: bool = False  # connected, but no answer in time
    connected: bool = False  # something accepted the connection, then failed it
    unresolved: bool = False  # the url's host name does not resolve
    overloaded: bool = False  # it answered 503: there, and busy

    @property
    def later(self) -> bool:
        """Whether the host is there but busy (silent, or overloaded): try again later."""
        return self.busy or self.overloaded

    @property
    def up(self) -> bool:
        return self.error is None


async def _check(backend: Backend, wanted: list[str]) -> HostCheck:
    try:
        have = await list_models_with_retries(backend)
    except BackendError as exc:
        if not exc.retryable:
            raise
        connected = isinstance(exc, BackendUnavailable) and exc.connected
        overloaded = isinstance(exc, BackendOverloaded)
        # in words, without the class name or the host's (the log line names the host)
        error = str(exc).removeprefix(f"{exc.host or backend.host.name}: ")
        return HostCheck(
            error=error,
            connected=connected,
            overloaded=overloaded,
            unresolved=exc.__cause__ is not None and name_unresolved(exc.__cause__),
        )
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
# A host that took the connection but did not answer in PREFLIGHT_TIMEOUT_S is busy (a
# llama-cpp-python server generates one request at a time): it gets this long more.
BUSY_WAIT_S = 60.0
# The endpoint each kind's preflight asks for its models (what the error names as tried).
_MODELS_PATH = {"ollama": "/api/tags", "openai": "/v1/models"}


def check_before_run(
    sweep: Sweep,
    *,
    simulated_only: bool = False,
    timeout_s: float = PREFLIGHT_TIMEOUT_S,
    busy_wait_s: float = BUSY_WAIT_S,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> None:
    """Refuse a sweep whose models have nowhere to run, before anything is written or
    Prefect starts: every host is asked for its models (concurrently, ``timeout_s`` each).
    A host that accepts the connection but does not answer in time is busy, not down: it
    is asked again with ``busy_wait_s`` to answer, after ``say``-ing so. ``simulated_only``
    checks only simulated hosts, whose models are known without any server (for
    ``evalflow plan``). Raises ModelNotFound or BackendUnavailable with one line saying
    which URL was tried and what to do (HostBusy where every host of a model is busy,
    not down: the command may work later, exit 75)."""
    hosts = tuple(h for h in sweep.spec.hosts if h.kind == "simulated" or not simulated_only)
    if not simulated_only:
        check_api_keys(sweep.spec)  # a key's variable unset: refused before any host is asked
    if hosts:
        asyncio.run(_check_before_run(sweep, hosts, timeout_s, busy_wait_s, say))


async def _check_before_run(
    sweep: Sweep,
    hosts: tuple[HostSpec, ...],
    timeout_s: float,
    busy_wait_s: float,
    say: Callable[[str], None],
) -> None:
    checks = await _ask(sweep, hosts, timeout_s)
    busy = [h for h in hosts if checks[h].busy]
    if busy:
        names = ", ".join(f"'{h.name}' ({h.shown_url})" for h in busy)
        say(
            f"waiting up to {busy_wait_s:g} s for busy host{'s' * (len(busy) > 1)} {names}: "
            f"connected, no answer within {timeout_s:g} s"
        )
        checks |= await _ask(sweep, tuple(busy), busy_wait_s)
    for model in sweep.required_models:
        serving = [h for h in hosts if h.serves(model)]
        if serving and not any(model in checks[h].models for h in serving):
            # every host up but busy (silent, or 503): try later (exit 75), not a URL to
            # fix (exit 2)
            busy = all(checks[h].later for h in serving)
            refusal = HostBusy if busy else BackendUnavailable
            error = refusal(_unreachable(model, serving, checks), model=model)
            _place(error, sweep.spec, _host_field(sweep.spec, serving[0], "url"))
            raise error
    await _probe_embedders(sweep, hosts, checks)


#: What preflight embeds to see that an embedding model pools (one vector per input).
PROBE_TEXT = "an embedding probe"
#: How long the embedding probe waits for its answer: a model may load first (seconds).
EMBED_PROBE_TIMEOUT_S = 30.0


async def _probe_embedders(
    sweep: Sweep,
    hosts: tuple[HostSpec, ...],
    checks: Mapping[HostSpec, HostCheck],
    timeout_s: float = EMBED_PROBE_TIMEOUT_S,
) -> None:
    """One embedding call per embedding model the sweep calls (a ``rag`` pipeline's
    ``embed_model``, ``semantic_similarity``'s), on the first real host that lists it: a
    model that answers one vector per token (it pools nothing: a chat GGUF served with
    ``"embedding": true``) is refused here, before any case runs, with the words every
    case would get (BackendRejected, exit 2; placed at the spec's field that names the
    model). Any other failure of the probe is left to the run, which retries as it does
    for a case."""
    from evaluation.backends._http import UnpooledEmbedding
    from evaluation.run._sweep import open_backends, pipeline_embedders

    wanted = dict.fromkeys([*pipeline_embedders(sweep.configs), *sweep.embed_models])
    probes = {}
    for model in wanted:
        host = next((h for h in hosts if h.kind != "simulated" and model in checks[h].models), None)
        if host is not None:
            probes[model] = host
    if not probes:
        return
    limits = replace(
        sweep.spec.limits, request_timeout_s=timeout_s, first_request_timeout_s=timeout_s
    )
    probed = tuple(dict.fromkeys(probes.values()))
    backends = open_backends(replace(sweep, spec=replace(sweep.spec, hosts=probed, limits=limits)))
    try:
        for model, host in probes.items():
            try:
                await asyncio.wait_for(
                    backends[host.name].embed(model, [PROBE_TEXT]), timeout_s + 1
                )
            except BackendError as exc:
                if not isinstance(exc.__cause__, UnpooledEmbedding):
                    continue  # busy, slow or failing: the run's retries say what it is
                found = _embedder_fix(model, sweep)
                _place(exc, sweep.spec, found[0] if found else _host_field(sweep.spec, host, ""))
                raise
            except TimeoutError:
                continue
    finally:
        await asyncio.gather(*(b.aclose() for b in backends.values()))


async def _ask(
    sweep: Sweep, hosts: tuple[HostSpec, ...], timeout_s: float
) -> dict[HostSpec, HostCheck]:
    """Each host's models, asked concurrently with ``timeout_s`` for each."""
    from evaluation.run._sweep import open_backends  # sweep imports the backends package

    limits = replace(
        sweep.spec.limits, request_timeout_s=timeout_s, first_request_timeout_s=timeout_s
    )
    backends = open_backends(replace(sweep, spec=replace(sweep.spec, hosts=hosts, limits=limits)))

    async def one(host: HostSpec) -> HostCheck:
        try:
            return await asyncio.wait_for(
                _check(backends[host.name], _served(host, sweep.required_models)), timeout_s + 1
            )
        except BackendError as exc:  # it answered: a model it lacks, or not its kind's API
            embedder = _embedder_fix(exc.model, sweep) if isinstance(exc, ModelNotFound) else None
            if embedder is not None:
                field, fix = embedder
                exc.args = (str(exc).replace(FIX_MODELS, fix),)
            else:
                field = _field_of(exc, sweep.spec, host)
            _place(exc, sweep.spec, field)
            raise
        except TimeoutError:
            if await accepts_connections(host.url, timeout_s):
                return HostCheck(error=busy_reason(timeout_s), busy=True)
            return HostCheck(error=f"no answer within {timeout_s:g} s")

    try:
        checks = await asyncio.gather(*(one(h) for h in hosts))
    finally:
        await asyncio.gather(*(b.aclose() for b in backends.values()))
    return dict(zip(hosts, checks, strict=True))


def _field_of(exc: BackendError, spec: SweepSpec, host: HostSpec) -> str | None:
    """Where in the spec a host's refusal points: the ``models`` entry naming a model the
    host lacks (the message names the host), its ``api_key_env`` for a refused key,
    else the host's entry (its ``kind`` for the wrong API, its ``url`` for a refusal
    before any HTTP answer, a plain-HTTP server at an https:// URL, and for a URL that
    leads to no model API)."""
    if isinstance(exc, ModelNotFound) and exc.model in spec.models:
        return f"models[{spec.models.index(exc.model)}]"
    if isinstance(exc, ModelNotFound):
        return _host_field(spec, host, "")
    if isinstance(exc, NoAPIAtURL):  # another web server there, or a path in the URL
        return _host_field(spec, host, "url")
    if isinstance(exc, KeyRefused):  # the key's variable, or the host for none
        return _host_field(spec, host, "api_key_env" if host.api_key_env else "")
    return _host_field(spec, host, "kind" if exc.status_code is not None else "url")


def _embedder_fix(model: str | None, sweep: Sweep) -> tuple[str, str] | None:
    """(field, fix) for a model (missing, or one that pools nothing) that is an embedding
    model a metric needs (``semantic_similarity``'s) or the pipeline calls: the fix is
    that embed_model, not the spec's models. None for any other model."""
    from evaluation.metrics import embed_model_of  # the scoring libraries
    from evaluation.run._sweep import pipeline_embedders

    for i, name in enumerate(sweep.metrics):
        if model and embed_model_of(name) == model:
            metric = name.partition("@")[0]
            return (
                f"metrics[{i}]" if sweep.spec.metrics else "metrics",
                f"give {metric} an embedding model the host has: "
                f"`metrics: [{{{metric}: {{embed_model: NAME}}}}]`",
            )
    if model in pipeline_embedders(sweep.configs):
        reader = FieldReader(str(sweep.spec.path) if sweep.spec.path is not None else None)
        grid = reader.written("grid.embed_model")
        return (
            "grid.embed_model" if grid else "pipeline.embed_model",
            "set the pipeline's embed_model to an embedding model the host has",
        )
    return None


def _host_field(spec: SweepSpec, host: HostSpec, field: str) -> str | None:
    """``host``'s entry (its ``field``, or the entry itself); None for a host the spec
    does not list (``$OLLAMA_HOST``)."""
    if host not in spec.hosts:
        return None
    return f"hosts[{spec.hosts.index(host)}]" + (f".{field}" if field else "")


def _place(exc: BackendError, spec: SweepSpec, name: str | None) -> None:
    """Put where field ``name`` is in the spec file in front of ``exc``'s message, as the
    spec's own errors have: "spec.yaml:9:5: field 'hosts[0].url': ..."; only the file for
    a field the file does not write (hosts from ``$OLLAMA_HOST``)."""
    if spec.path is None or name is None:
        return
    reader = FieldReader(str(spec.path))
    if not reader.written(name.partition("[")[0]):
        exc.args = (f"{spec.path}: {exc}",)
        return
    line, column = reader.position(name) or (None, None)
    exc.args = (
        str(SpecError(str(exc), field=name, path=str(spec.path), line=line, column=column)),
    )


def busy_reason(timeout_s: float) -> str:
    """Why a host that took the connection but kept silent is not called down."""
    return f"connected but no answer within {timeout_s:g} s (busy with another request?)"


async def accepts_connections(url: str, timeout_s: float) -> bool:
    """Whether a TCP connection to ``url``'s host and port opens within ``timeout_s``:
    what tells a busy server (it accepts, then keeps silent) from a down one."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _served(host: HostSpec, models: Iterable[str]) -> list[str]:
    return [m for m in models if host.serves(m)]


def _unreachable(model: str, hosts: list[HostSpec], checks: Mapping[HostSpec, HostCheck]) -> str:
    tried = "; ".join(
        f"GET {h.shown_url}{_MODELS_PATH.get(h.kind, '/api/tags')}: "
        f"{checks[h].error or 'unknown error'}"
        for h in hosts
    )
    names = ", ".join(f"'{h.name}'" for h in hosts)
    kinds = dict.fromkeys(h.kind for h in hosts)
    later = all(checks[h].later for h in hosts)  # up, serving someone else
    if later:
        fix = "run the same command again when the server is free, or give the model another host"
    elif all(checks[h].connected for h in hosts):  # a server is there, failing
        fix = listening_hint(hosts[0].kind)
    elif all(checks[h].unresolved for h in hosts):  # nothing to start: the name is wrong
        fix = "check the host name in the url (a typo, or a name this machine cannot look up)"
    elif len(kinds) == 1:
        fix = start_hint(hosts[0].kind)
    else:  # each kind its own server to start
        fix = "; ".join(
            f"{', '.join(repr(h.name) for h in hosts if h.kind == kind)}: {start_hint(kind)}"
            for kind in kinds
        )
    return (
        f"{_lead(model, [checks[h] for h in hosts])} ({tried}); {fix}; "
        f"`evalflow doctor SPEC` checks every host (host{'s' * (len(hosts) > 1)} {names})"
    )


def _lead(model: str, checks: list[HostCheck]) -> str:
    """What the hosts of ``model`` did, in words: none answered in time, answered that
    it is overloaded (HTTP 503: the host is there, not to be started), or could not be
    reached."""
    if all(check.busy for check in checks):
        return f"no host answered in time for model '{model}'"
    if all(check.overloaded for check in checks):
        hosts = "the host" if len(checks) == 1 else "every host"
        return f"{hosts} of model '{model}' answered: overloaded"
    if all(check.later for check in checks):
        return f"every host of model '{model}' is busy (silent or overloaded)"
    return f"cannot reach any host for model '{model}'"


def listening_hint(kind: str) -> str:
    """What to do about a host whose address accepts connections but fails every request
    (resets them, or never answers): nothing to start; something else may listen there."""
    server = {"ollama": "Ollama", "openai": "the OpenAI-compatible server"}.get(kind, "it")
    return (
        "something accepts connections there but drops the requests: check that the URL "
        f"is {server}'s (its port) and that it is healthy (its log), or restart it"
    )


#: What a hint to start an OpenAI-compatible host says to start.
START_OPENAI = (
    "start the OpenAI-compatible server there (llama.cpp's `llama-server`, "
    "`python -m llama_cpp.server`, `vllm serve`)"
)


def start_hint(kind: str) -> str:
    """What to do about an unreachable host of ``kind``: start its server (Ollama's own
    command only for an Ollama host), or point the spec at where it runs."""
    if kind == "ollama":
        return (
            "start Ollama there (`ollama serve`), or point OLLAMA_HOST or the spec's hosts at "
            "where it runs"
        )
    if kind == "openai":
        return f"{START_OPENAI}, or point the host's url at its root"
    return "fix the spec's hosts"
