"""A stand-in Ollama server speaking the real wire format, for tests and benchmarks.

In-process: ``with running_standin(StandInConfig(...)) as s:`` serves on ``s.url`` from a
uvicorn thread; ``s.set_fault(...)`` schedules faults, ``s.stats`` counts requests,
in-flight peaks and model loads, ``s.stop()``/``s.start()`` take the host down and bring
it back on the same port. As a process: ``python -m tests.support.standin_ollama --port P
--slots 4 --latency-ms 200 --models a,b``.

Behaviour (see /work/shared/reference/ollama-api.md): streamed NDJSON ``/api/chat`` with a
final chunk carrying integer-nanosecond counters (or one JSON object with ``stream:
false``), SSE ``/v1/chat/completions``, ``/api/embed`` and ``/v1/embeddings`` (the
SIMULATED hashed bag-of-words vectors of evaluation/backends/_simulated_embed.py, every
model embeds; ``stats.embedded`` counts how often each text was embedded), ``/api/tags``,
``/api/show``, ``/api/ps``, ``/api/version``, ``/v1/models``, Ollama's exact 404/503
bodies. Requests beyond ``slots``
wait; beyond ``slots + max_queue`` in flight they get 503. At most ``max_loaded_models``
models are resident: asking for another one is a "load" (counted, and delayed by the load
time), evicting the least recently used. Requests to other models keep running during a
load, which real Ollama would not allow; the load count is what tests rely on.

Faults, served to the next generation requests in the order set (``set_fault(kind,
times=1, message=..., after_chunks=1, hang_s=30.0, model=None)``): "busy" (503, Ollama's
body), "server_error" (500), "bad_request" (400), "error_line" (an ``{"error": ...}`` line
after ``after_chunks`` chunks, status 200), "drop" (transport aborted mid-stream), "hang"
(no answer for ``hang_s``, abandoned when the client disconnects); ``hang_listings(n)``:
the next n model listings get no answer (a busy server); ``overload_listings(n)``: the
next n get 503 with Ollama's "server busy" body; ``hold_answers(until, after=0)``: no
generation but the next ``after`` is answered before the ``threading.Event`` ``until``
is set (another host's lanes then have work for certain, a run has work left when it is
cancelled, whatever the machine's load); a held request whose client leaves is dropped.
A fault set with
``embed=True`` goes to the next embedding requests instead ("busy", "server_error",
"bad_request", "drop" and "hang" apply; "error_line" is a 500 there). A status fault's
message may hold ``{authorization}`` and ``{credentials}``: the request's Authorization
header and the ``user:password`` its Basic value carries, as a server that echoes its
request's credentials in an error says them. With ``api_key`` set, every request but
``GET /`` without ``Authorization: Bearer <api_key>`` gets 401 as vLLM started with
``--api-key`` answers it (``{"error": "Unauthorized"}``); ``stats.refused`` counts them.
With ``openai_only`` too, Ollama's routes answer their 404 before any key is asked, as
vLLM's and llama.cpp's servers (their key guards ``/v1`` only) do.

The reply defaults to the last user message echoed back, one "token" per
whitespace-separated word, cut before the first stop sequence (``options.stop``, ``stop``)
and at ``num_predict`` (done_reason "length"). A prompt counts
``tokens_per_word`` tokens a word, at most ``num_ctx`` on ``/api/chat`` (Ollama's silent
cut); with ``n_ctx`` set the OpenAI-compatible route trims ``max_tokens`` to what the
context leaves, as llama.cpp's server does, and ``/props`` says ``n_ctx``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import logging
import math
import socket
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import uvicorn

from evaluation.backends._preflight import ollama_name_key
from evaluation.backends._simulated_embed import simulated_embedding
from evaluation.spec import BackendKind, HostSpec
from tests.support.ollama_wire import (
    BUSY_MESSAGE,
    Dialect,
    OllamaDialect,
    OpenAIDialect,
    not_found_message,
    ps_entry,
    read_json,
    respond,
    respond_json,
    send_part,
    show_body,
    sleep_unless_gone,
    split_tokens,
    start_stream,
    tag_entry,
    wait_disconnect,
)

#: The Authorization header of the request being answered (``{authorization}``).
_AUTHORIZATION: contextvars.ContextVar[str] = contextvars.ContextVar("authorization", default="")


def _said(message: str) -> str:
    """A status fault's ``message`` with the request's credentials filled in."""
    header = _AUTHORIZATION.get()
    scheme, _, value = header.partition(" ")
    credentials = base64.b64decode(value).decode() if scheme == "Basic" else ""
    return message.replace("{authorization}", header).replace("{credentials}", credentials)


FaultKind = Literal["busy", "server_error", "bad_request", "error_line", "drop", "hang"]
Reply = Callable[[str, Sequence[Mapping[str, Any]]], str]


def echo_reply(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The default reply: the last user message."""
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


@dataclass(frozen=True)
class StandInConfig:
    """How the stand-in behaves. ``latency_ms`` is each request's time in its slot: a
    quarter before the first token (prompt evaluation), the rest before the remaining
    chunks. ``load_ms`` (or ``load_ms_by_model``) delays a request that loads a model."""

    models: tuple[str, ...] = ("llama3:latest", "qwen2.5:0.5b")
    slots: int = 4
    max_queue: int = 512
    max_loaded_models: int = 1
    latency_ms: float = 0.0
    load_ms: float = 0.0
    load_ms_by_model: Mapping[str, float] = field(default_factory=dict)
    chunks: int = 4
    reply: Reply = echo_reply
    version: str = "0.6.8"
    embed_latency_ms: float = 0.0  # each embedding request's time in its slot
    # Model tokens per whitespace word of a prompt (real tokenizers split words further):
    # above 1, a prompt whose words fit num_ctx may not fit in tokens.
    tokens_per_word: float = 1.0
    # llama.cpp's server context (``--ctx-size``) on the OpenAI-compatible route: when
    # prompt + max_tokens exceed it, max_tokens is trimmed to what is left (finish_reason
    # "length"); served as ``/props``' ``default_generation_settings.n_ctx``. None: off.
    n_ctx: int | None = None
    # The ``response_format`` types the OpenAI-compatible route accepts; any other is
    # refused as llama-cpp-python's server refuses ``json_schema`` (a 500 carrying the
    # validation error). None: every type is accepted.
    response_format_types: tuple[str, ...] | None = None
    # Speak only the OpenAI-compatible API, as llama.cpp's and vLLM's servers do: every
    # Ollama route (``/api/...``) answers 404 ``{"detail":"Not Found"}``.
    openai_only: bool = False
    # Models that cannot chat (an embedding model, on llama-cpp-python's server): a
    # streamed chat request gets 200 and a stream that ends at once (no final chunk, no
    # ``[DONE]``), an unstreamed one a 500 carrying the message.
    chat_fails: Mapping[str, str] = field(default_factory=dict)
    # The key a request must carry (``Authorization: Bearer <key>``); None: no key asked.
    api_key: str | None = None
    # What ``/v1/models`` says owns each model (Ollama: "library"; llama-cpp-python's
    # server: "me").
    owned_by: str = "library"
    # Models whose embeddings come back one vector per word, not one per input: a chat
    # GGUF served with ``"embedding": true`` by llama-cpp-python pools nothing.
    unpooled: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Fault:
    """An injected fault. ``after_chunks``: content chunks sent before an ``error_line``
    or ``drop``; ``hang_s``: how long a ``hang`` waits before answering (it gives up when
    the client disconnects); ``model``: only requests for this model (None: any)."""

    kind: FaultKind
    message: str = "injected fault"
    after_chunks: int = 1
    hang_s: float = 30.0
    model: str | None = None
    embed: bool = False  # for embedding requests instead of generation requests


@dataclass
class StandInStats:
    """Counters of generation requests (``/api/chat`` and ``/v1/chat/completions``) and,
    apart, of embedding requests (``/api/embed``, ``/v1/embeddings``); ``in_flight`` and
    its peak count both kinds, as a host's slots do."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    overloaded: int = 0  # 503s because in-flight exceeded slots + max_queue
    refused: int = 0  # 401s: no key, or not ``StandInConfig.api_key``
    requests_by_model: Counter[str] = field(default_factory=Counter)
    loads: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    last_request: dict[str, Any] | None = None
    embed_requests: int = 0
    embedded: Counter[str] = field(default_factory=Counter)  # text -> times embedded
    embedded_by_model: Counter[str] = field(default_factory=Counter)  # texts per model
    started_at: list[float] = field(default_factory=list)  # time.time() of each request
    ended_at: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # each request's both
    cpu_started: float = field(default_factory=time.process_time)  # this process's CPU then

    @property
    def model_loads(self) -> int:
        return sum(self.loads.values())


class _DroppedConnection(Exception):
    """Raised mid-response so uvicorn aborts the transport (a "drop" fault)."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DroppedConnection))


_QUIET_DROPS = _QuietDrops()


class _Runtime:
    """State that lives and dies with one server run (a restart unloads every model)."""

    def __init__(self, config: StandInConfig) -> None:
        self.slots = asyncio.Semaphore(config.slots)
        self.load_lock = asyncio.Lock()
        self.loaded: OrderedDict[str, None] = OrderedDict()


class StandIn:
    """The stand-in server and its controls; see the module docstring."""

    def __init__(self, config: StandInConfig | None = None, *, port: int = 0) -> None:
        self.config = config or StandInConfig()
        self.stats = StandInStats()
        self.port = port
        self._faults: list[list[Any]] = []  # [Fault, remaining]
        self._listing_hangs = 0
        self._listing_overloads = 0
        self._held_until: threading.Event | None = None
        self._held_after = 0  # the requests counted before the hold begins
        self._lock = threading.Lock()
        self._runtime = _Runtime(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def host(
        self, name: str = "standin", *, slots: int | None = None, kind: BackendKind = "ollama"
    ) -> HostSpec:
        """A HostSpec pointing at this server."""
        return HostSpec(name=name, url=self.url, slots=slots or self.config.slots, kind=kind)

    # -- controls -------------------------------------------------------------------

    def set_fault(self, kind: FaultKind, times: int = 1, **options: Any) -> None:
        """The next ``times`` generation requests (for ``model=``, if given) get ``kind``;
        faults set earlier are served first."""
        with self._lock:
            self._faults.append([Fault(kind, **options), times])

    def hang_listings(self, times: int) -> None:
        """The next ``times`` model listings (``/api/tags``, ``/v1/models``) get no answer
        until the client gives up: a server busy with another client's request, as
        llama-cpp-python's (one request at a time) is."""
        with self._lock:
            self._listing_hangs = times

    def overload_listings(self, times: int) -> None:
        """The next ``times`` model listings are answered 503 with Ollama's "server busy"
        body (OpenAI's error object on ``/v1/models``): a server that is overloaded."""
        with self._lock:
            self._listing_overloads = times

    def hold_answers(self, until: threading.Event | None, *, after: int = 0) -> None:
        """Generation requests but the next ``after`` get no answer before ``until`` is
        set (they are counted and wait for it ahead of their slot; one whose client
        disconnects meanwhile ends there); None: answer at once again."""
        with self._lock:
            self._held_until, self._held_after = until, self.stats.requests + after

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._listing_hangs = 0
        self._listing_overloads = 0

    def reconfigure(self, **changes: Any) -> None:
        """Change the config for the following requests (``slots`` from the next
        ``reset()`` or restart on)."""
        self.config = replace(self.config, **changes)

    def reset(self, config: StandInConfig | None = None) -> None:
        """Fresh stats, no faults, no model loaded; optionally a new config."""
        self.clear_faults()
        self.stats = StandInStats()
        self.config = config or self.config
        self._runtime = _Runtime(self.config)

    def start(self, timeout_s: float = 10.0) -> None:
        if self._thread is not None:
            return
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets
        # whose proto says TCP, and Nagle + delayed ACKs would hold back stream chunks.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._runtime = _Runtime(self.config)
        config = uvicorn.Config(
            self,
            lifespan="off",
            http="h11",
            loop="asyncio",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"standin-{self.port}",
            daemon=True,
        )
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"stand-in did not start on port {self.port}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving (connections are refused) until ``start`` is called again."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    # -- ASGI -----------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        _AUTHORIZATION.set(dict(scope["headers"]).get(b"authorization", b"").decode("latin-1"))
        route = (scope["method"], scope["path"])
        key = self.config.api_key
        unguarded = scope["path"] == "/" or (
            self.config.openai_only and scope["path"].startswith("/api/")
        )
        if key is not None and not unguarded and _AUTHORIZATION.get() != f"Bearer {key}":
            with self._lock:
                self.stats.refused += 1
            await respond_json(send, 401, {"error": "Unauthorized"})
            return
        models = self.config.models
        listing = route in {("GET", "/api/tags"), ("GET", "/v1/models")}
        if listing and self._take_listing("_listing_hangs"):
            await sleep_unless_gone(3600.0, receive)
            return
        if listing and self._take_listing("_listing_overloads"):
            dialect = OpenAIDialect if route[1].startswith("/v1/") else OllamaDialect
            await respond_json(send, 503, dialect.error(BUSY_MESSAGE, 503))
            return
        if self.config.openai_only and scope["path"].startswith("/api/"):
            await respond_json(send, 404, {"detail": "Not Found"})
        elif route == ("POST", "/api/chat"):
            await self._generation(OllamaDialect, receive, send)
        elif route == ("POST", "/v1/chat/completions"):
            await self._generation(OpenAIDialect, receive, send)
        elif route == ("POST", "/api/embed"):
            await self._counted(self._embed(OllamaDialect, receive, send))
        elif route == ("POST", "/v1/embeddings"):
            await self._counted(self._embed(OpenAIDialect, receive, send))
        elif route in {("GET", "/"), ("HEAD", "/")}:
            await respond(send, 200, b"Ollama is running", b"text/plain; charset=utf-8")
        elif route == ("GET", "/api/version"):
            await respond_json(send, 200, {"version": self.config.version})
        elif route == ("GET", "/api/tags"):
            await respond_json(send, 200, {"models": [tag_entry(m) for m in models]})
        elif route == ("GET", "/api/ps"):
            loaded = [ps_entry(m) for m in self._runtime.loaded]
            await respond_json(send, 200, {"models": loaded})
        elif route == ("POST", "/api/show"):
            await self._show(receive, send)
        elif route == ("GET", "/props") and self.config.n_ctx is not None:
            settings = {"n_ctx": self.config.n_ctx}
            await respond_json(send, 200, {"default_generation_settings": settings})
        elif route == ("GET", "/v1/models"):
            owner = self.config.owned_by
            data = [{"id": m, "object": "model", "created": 0, "owned_by": owner} for m in models]
            await respond_json(send, 200, {"object": "list", "data": data})
        else:
            await respond(send, 404, b"404 page not found", b"text/plain")

    def _take_listing(self, counter: str) -> bool:
        """Whether the listing asked now takes one of ``counter``'s faults (a hang, a 503)."""
        with self._lock:
            if getattr(self, counter) <= 0:
                return False
            setattr(self, counter, getattr(self, counter) - 1)
            return True

    def _resolve(self, name: str) -> str | None:
        key = ollama_name_key(name)
        return next((m for m in self.config.models if ollama_name_key(m) == key), None)

    async def _show(self, receive: Callable, send: Callable) -> None:
        body = await read_json(receive, send, OllamaDialect)
        if body is None:
            return
        name = str(body.get("model") or body.get("name") or "")
        model = self._resolve(name)
        if model is None:
            await respond_json(send, 404, {"error": f"model '{name}' not found"})
        else:
            await respond_json(send, 200, show_body(model))

    def _next_fault(self, model: str, *, embed: bool = False) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                fault = entry[0]
                if fault.embed != embed:
                    continue
                if fault.model is None or self._resolve(fault.model) == model:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        self._faults.remove(entry)
                    self.stats.faults[fault.kind] += 1
                    return fault
        return None

    async def _generation(self, dialect: Dialect, receive: Callable, send: Callable) -> None:
        await self._counted(self._generate(dialect, receive, send))

    async def _counted(self, request: Awaitable[None]) -> None:
        stats = self.stats
        started = time.time()
        stats.started_at.append(started)
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            await request
        finally:
            stats.in_flight -= 1
            stats.ended_at.append(time.time())
            stats.spans.append((started, stats.ended_at[-1]))

    async def _embed(self, dialect: Dialect, receive: Callable, send: Callable) -> None:
        started = time.perf_counter_ns()
        body = await read_json(receive, send, dialect)
        if body is None:
            return
        name = str(body.get("model") or "")
        model = self._resolve(name) if name else None
        if model is None:
            status, message = (404, not_found_message(name)) if name else (400, "model is required")
            await respond_json(send, status, dialect.error(message, status))
            return
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            await respond_json(send, 400, dialect.error("invalid input type", 400))
            return
        stats = self.stats
        stats.embed_requests += 1
        stats.last_request = body
        fault = self._next_fault(model, embed=True)
        if fault is not None and fault.kind != "hang":
            if fault.kind == "drop":
                await start_stream(send, b"application/json; charset=utf-8")
                raise _DroppedConnection
            status = _STATUS_FAULTS.get(fault.kind, 500)
            message = BUSY_MESSAGE if fault.kind == "busy" else _said(fault.message)
            await respond_json(send, status, dialect.error(message, status))
            return
        runtime = self._runtime
        async with runtime.slots:
            load_ns = await self._load(runtime, model)
            if fault is not None and not await sleep_unless_gone(fault.hang_s, receive):
                return
            await asyncio.sleep(self.config.embed_latency_ms / 1e3)
            stats.embedded.update(texts)
            stats.embedded_by_model[model] += len(texts)
            vectors = [
                [simulated_embedding(model, w) for w in text.split() or [text]]
                if model in self.config.unpooled
                else simulated_embedding(model, text)
                for text in texts
            ]
        counters = {
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": load_ns,
            "prompt_eval_count": sum(len(text.split()) for text in texts),
        }
        await respond_json(send, 200, dialect.embeddings(model, vectors, counters))

    async def _generate(self, dialect: Dialect, receive: Callable, send: Callable) -> None:
        started = time.perf_counter_ns()
        body = await read_json(receive, send, dialect)
        if body is None:
            return
        name = str(body.get("model") or "")
        model = self._resolve(name) if name else None
        if model is None:
            status, message = (404, not_found_message(name)) if name else (400, "model is required")
            await respond_json(send, status, dialect.error(message, status))
            return
        config, stats = self.config, self.stats
        stats.requests += 1
        stats.requests_by_model[model] += 1
        stats.last_request = body
        if stats.in_flight > config.slots + config.max_queue:
            stats.overloaded += 1
            await respond_json(send, 503, dialect.error(BUSY_MESSAGE, 503))
            return
        refused = _refused_response_format(dialect, body, config.response_format_types)
        if refused is not None:
            await respond_json(send, 500, dialect.error(refused, 500))
            return
        failure = config.chat_fails.get(model)
        if failure is not None:
            if body.get("stream", dialect is OllamaDialect):  # Ollama streams by default
                await start_stream(send, b"text/event-stream")
                await send_part(send, b"", last=True)
            else:
                await respond_json(send, 500, dialect.error(failure, 500))
            return
        fault = self._next_fault(model)
        if fault is not None and fault.kind in _STATUS_FAULTS:
            status = _STATUS_FAULTS[fault.kind]
            message = BUSY_MESSAGE if fault.kind == "busy" else _said(fault.message)
            await respond_json(send, status, dialect.error(message, status))
            return
        held = self._held_until is not None and stats.requests > self._held_after
        if held and not await self._held(receive):
            return
        runtime = self._runtime
        async with runtime.slots:
            load_ns = await self._load(runtime, model)
            if fault is not None and fault.kind == "hang":
                if not await sleep_unless_gone(fault.hang_s, receive):
                    return
                fault = None
            await self._answer(dialect, body, fault, started, load_ns, send)

    async def _held(self, receive: Callable) -> bool:
        """Wait while answers are held (``hold_answers``); False when the client left
        first (a cancelled run's request: nothing is answered to it)."""
        gone = asyncio.ensure_future(wait_disconnect(receive))
        try:
            while (until := self._held_until) is not None and not until.is_set():
                if gone.done():
                    return False
                await asyncio.sleep(0.01)
        finally:
            gone.cancel()
        return True

    async def _load(self, runtime: _Runtime, model: str) -> int:
        """Make ``model`` resident; the nanoseconds spent loading it (0 if it was)."""
        if model in runtime.loaded:
            runtime.loaded.move_to_end(model)
            return 0
        async with runtime.load_lock:
            if model in runtime.loaded:
                return 0
            begin = time.perf_counter_ns()
            await asyncio.sleep(self.config.load_ms_by_model.get(model, self.config.load_ms) / 1e3)
            while len(runtime.loaded) >= max(1, self.config.max_loaded_models):
                runtime.loaded.popitem(last=False)
            runtime.loaded[model] = None
            self.stats.loads[model] += 1
            return time.perf_counter_ns() - begin

    async def _answer(
        self,
        dialect: Dialect,
        body: Mapping[str, Any],
        fault: Fault | None,
        started: int,
        load_ns: int,
        send: Callable,
    ) -> None:
        config, name = self.config, body["model"]
        tokens, reason, prompt_count = planned_reply(config, dialect, body)
        stream = body.get("stream", dialect.stream_default)
        if fault is not None and not stream:  # no stream to break: fail the whole answer
            if fault.kind == "error_line":
                await respond_json(send, 500, dialect.error(fault.message, 500))
                return
            await start_stream(send, b"application/json; charset=utf-8")
            raise _DroppedConnection
        pieces = split_tokens(tokens, config.chunks) if stream else []
        if stream:
            await start_stream(send, dialect.content_type)
        prompt_begin = time.perf_counter_ns()
        await asyncio.sleep(config.latency_ms / 4e3)
        eval_begin = time.perf_counter_ns()
        for i, piece in enumerate([*pieces, None]):
            if i == min(1, len(pieces)):
                await asyncio.sleep(config.latency_ms * 3 / 4e3)
            if fault is not None and i == min(fault.after_chunks, len(pieces)):
                if fault.kind == "drop":
                    raise _DroppedConnection
                await send_part(send, dialect.error_line(fault.message), last=True)
                return
            if piece is not None:
                await send_part(send, dialect.chunk(name, piece))
        done = time.perf_counter_ns()
        counters = {
            "total_duration": done - started,
            "load_duration": load_ns,
            "prompt_eval_count": prompt_count,
            "prompt_eval_duration": eval_begin - prompt_begin,
            "eval_count": len(tokens),
            "eval_duration": done - eval_begin,
        }
        if stream:
            final = dialect.final_stream(name, reason, counters, body)
            await send_part(send, final, last=True)
        else:
            text = "".join(tokens)
            await respond_json(send, 200, dialect.final(name, text, reason, counters))


def planned_reply(
    config: StandInConfig, dialect: Dialect, body: Mapping[str, Any]
) -> tuple[list[str], str, int]:
    """A generation request's answer: its tokens (cut at the first stop sequence and at
    ``num_predict``), its done reason and the prompt's token count."""
    messages = body.get("messages") or []
    reply = (config.reply(body["model"], messages) or "") if messages else ""
    cuts = [i for i in (reply.find(s) for s in dialect.stop(body)) if i >= 0]
    words = reply[: min(cuts, default=len(reply))].split()  # the stop sequence left out
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    limit = dialect.num_predict(body)
    reason = "stop" if messages or dialect is OpenAIDialect else "load"  # warm-up call
    words_in = sum(len(str(m.get("content", "")).split()) for m in messages)
    prompt_count = math.ceil(words_in * config.tokens_per_word)
    num_ctx = (body.get("options") or {}).get("num_ctx")
    if isinstance(num_ctx, int) and num_ctx > 0:
        prompt_count = min(prompt_count, num_ctx)  # Ollama truncates silently
    if dialect is OpenAIDialect and config.n_ctx is not None:
        room = max(0, config.n_ctx - prompt_count)  # llama.cpp trims max_tokens
        limit = room if limit < 0 else min(limit, room)
    if 0 <= limit < len(tokens):
        tokens, reason = tokens[:limit], "length"
    return tokens, reason, prompt_count


def _refused_response_format(
    dialect: Dialect, body: Mapping[str, Any], accepted: tuple[str, ...] | None
) -> str | None:
    """llama-cpp-python's message for a ``response_format`` type it does not read."""
    kind = (body.get("response_format") or {}).get("type")
    if dialect is not OpenAIDialect or accepted is None or kind is None or kind in accepted:
        return None
    expected = " or ".join(repr(t) for t in accepted)
    return str(
        [
            {
                "type": "literal_error",
                "loc": ("body", "response_format", "type"),
                "msg": f"Input should be {expected}",
                "input": kind,
                "ctx": {"expected": expected},
            }
        ]
    )


_STATUS_FAULTS = {"busy": 503, "server_error": 500, "bad_request": 400}


@contextlib.contextmanager
def running_standin(config: StandInConfig | None = None, *, port: int = 0) -> Iterator[StandIn]:
    """A started stand-in, stopped on exit."""
    standin = StandIn(config, port=port)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


def parse_args(argv: Sequence[str] | None = None) -> tuple[StandInConfig, int]:
    """The command line of a stand-in process: its config and port."""
    parser = argparse.ArgumentParser(description="Serve a stand-in Ollama API.")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--max-queue", type=int, default=512)
    parser.add_argument("--max-loaded-models", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--load-ms", type=float, default=0.0)
    parser.add_argument("--models", default=",".join(StandInConfig.models))
    args = parser.parse_args(argv)
    config = StandInConfig(
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        slots=args.slots,
        max_queue=args.max_queue,
        max_loaded_models=args.max_loaded_models,
        latency_ms=args.latency_ms,
        load_ms=args.load_ms,
    )
    return config, args.port


def serve(app: Any, port: int) -> None:
    """Serve a stand-in app on 127.0.0.1 in this process until it is stopped."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        http="h11",
        log_level="warning",
        access_log=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    config, port = parse_args(argv)
    serve(StandIn(config, port=port), port)


if __name__ == "__main__":
    main()
