"""A stand-in Ollama host that costs its machine little, for benchmarks of fast clients.

The ASGI stand-in (``standin_ollama``: uvicorn, h11, a task and an ASGI exchange per
request) spends about a millisecond of CPU on a streamed generation, so on this project's
2-core machine it could not serve a 64-slot host at 20 ms (3,200 answers a second) and
every client measured against it looked slower than it was
(benchmarks/perf/throughput_goal.py). This one answers the same routes with the same
bytes (``ollama_wire``'s dialects, ``standin_ollama.planned_reply``) from an
``asyncio.Protocol``: per answer a parse of the head, ``json.loads`` of the body, two
timers (a quarter of ``latency_ms`` to the first chunk, the rest to the last) and two
writes; no task, no ASGI, no h11.

What it speaks: HTTP/1.1 requests whose body has a ``Content-Length`` (as httpx and the
OpenAI client send them), keep-alive, one request at a time per connection; ``GET /``,
``/api/version``, ``/api/tags``, ``/api/ps``, ``/v1/models``, ``POST /api/show``,
``/api/chat`` and ``/v1/chat/completions`` (streamed or not), ``/api/embed`` and
``/v1/embeddings``; ``GET /_stats`` (``?spans=1``) and ``POST /_stats`` (zero them) as
``standin_process`` answers them, plus ``max_busy`` (the most requests holding a slot at
once). What it leaves out: faults, held answers, hanging listings and model loads (every
model it lists is resident; a model's first request counts as its load).

Slots: one process, so the host's count is exact: a request beyond ``slots`` waits, first
come first served; beyond ``slots + max_queue`` open it gets Ollama's 503. One process
spends ~0.2 ms of CPU on a streamed answer, ~5,000 a second on one core
(benchmarks/perf/README.md, ``throughput_goal.py``'s row); several
processes behind ``SO_REUSEPORT`` would need the slot count and the counters in shared
memory and a hand-off of waiting requests between processes, which this machine's two
cores would not use.

``python -m tests.support.standin_fast --port P --slots N --latency-ms L --models a,b``
(``standin_ollama``'s options); in process, ``FastStandIn(config).start()`` serves from a
thread until ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from evaluation.backends._preflight import ollama_name_key
from evaluation.backends._simulated_embed import simulated_embedding
from tests.support.ollama_wire import (
    BUSY_MESSAGE,
    Dialect,
    OllamaDialect,
    OpenAIDialect,
    dumps,
    not_found_message,
    openai_model_entry,
    ps_entry,
    show_body,
    split_tokens,
    tag_entry,
)
from tests.support.standin_ollama import (
    StandInConfig,
    StandInStats,
    parse_args,
    planned_reply,
)
from tests.support.standin_process import stats_json

BODY_LIMIT = 16 * 2**20
_JSON = b"application/json; charset=utf-8"


class FastStandIn:
    """The host: its config, slots, counters and listening socket."""

    def __init__(self, config: StandInConfig | None = None, *, port: int = 0) -> None:
        self.config = config or StandInConfig()
        self.port = port
        self.stats = StandInStats()
        self.busy = 0  # requests holding a slot
        self.max_busy = 0
        self.waiting: deque[_Job] = deque()
        self.loaded: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Fresh counters (``POST /_stats``)."""
        self.stats = StandInStats()
        self.max_busy = self.busy

    def stats_json(self, *, spans: bool = False) -> dict[str, Any]:
        return stats_json(self.stats, self.config.slots, spans=spans) | {"max_busy": self.max_busy}

    # -- serving ------------------------------------------------------------------------

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop`` (or the process ends)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await self._loop.create_server(lambda: _Connection(self), sock=sock, backlog=4096)
        async with server:
            if ready is not None:
                ready()
            await self._stopped.wait()

    def start(self, timeout_s: float = 10.0) -> FastStandIn:
        """Serve from a thread of this process."""
        started = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self.serve(started.set),), name="standin-fast", daemon=True
        )
        self._thread.start()
        if not started.wait(timeout_s):
            raise RuntimeError("the fast stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = self._loop = None

    # -- slots ----------------------------------------------------------------------------

    def admit(self, job: _Job) -> None:
        """Count a generation or embedding request in; it starts when a slot is free."""
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        if self.busy < self.config.slots:
            self._begin(job)
        else:
            self.waiting.append(job)

    def _begin(self, job: _Job) -> None:
        self.busy += 1
        self.max_busy = max(self.max_busy, self.busy)
        job.holds_slot = True
        job.begin()

    def release(self, job: _Job) -> None:
        """``job`` is answered or abandoned: count it out and give its slot on."""
        if job.counted_out:
            return
        job.counted_out = True
        stats = self.stats
        stats.in_flight -= 1
        ended = time.time()
        stats.ended_at.append(ended)
        stats.spans.append((job.arrived, ended))
        if job.holds_slot:
            job.holds_slot = False
            self.busy -= 1
            while self.waiting and self.busy < self.config.slots:
                waiter = self.waiting.popleft()
                if not waiter.counted_out:
                    self._begin(waiter)
        else:
            with contextlib.suppress(ValueError):
                self.waiting.remove(job)

    # -- routes ---------------------------------------------------------------------------

    def route(self, conn: _Connection, method: bytes, target: bytes, raw: bytes) -> None:
        path, _, query = target.partition(b"?")
        config = self.config
        if path == b"/_stats":
            if method == b"POST":
                self.reset()
            conn.respond_json(200, self.stats_json(spans=b"spans=1" in query))
        elif (method, path) == (b"POST", b"/api/chat"):
            self._generation(conn, OllamaDialect, raw)
        elif (method, path) == (b"POST", b"/v1/chat/completions"):
            self._generation(conn, OpenAIDialect, raw)
        elif (method, path) == (b"POST", b"/api/embed"):
            self._embedding(conn, OllamaDialect, raw)
        elif (method, path) == (b"POST", b"/v1/embeddings"):
            self._embedding(conn, OpenAIDialect, raw)
        elif path == b"/" and method in (b"GET", b"HEAD"):
            conn.respond(200, b"Ollama is running", b"text/plain; charset=utf-8")
        elif (method, path) == (b"GET", b"/api/version"):
            conn.respond_json(200, {"version": config.version})
        elif (method, path) == (b"GET", b"/api/tags"):
            conn.respond_json(200, {"models": [tag_entry(m) for m in config.models]})
        elif (method, path) == (b"GET", b"/api/ps"):
            conn.respond_json(200, {"models": [ps_entry(m) for m in sorted(self.loaded)]})
        elif (method, path) == (b"GET", b"/v1/models"):
            data = [openai_model_entry(m) for m in config.models]
            conn.respond_json(200, {"object": "list", "data": data})
        elif (method, path) == (b"POST", b"/api/show"):
            body = _json_object(conn, OllamaDialect, raw)
            if body is not None:
                name = str(body.get("model") or body.get("name") or "")
                if (model := self._resolve(name)) is not None:
                    conn.respond_json(200, show_body(model))
                else:
                    conn.respond_json(404, {"error": f"model '{name}' not found"})
        else:
            conn.respond(404, b"404 page not found", b"text/plain")

    def _resolve(self, name: str) -> str | None:
        """The listed model ``name`` means ("llama3" is "llama3:latest"), if any."""
        key = ollama_name_key(name)
        return next((m for m in self.config.models if ollama_name_key(m) == key), None)

    def _model(self, conn: _Connection, dialect: Dialect, body: dict) -> str | None:
        """The request's model if this host has it; else the error is answered."""
        name = str(body.get("model") or "")
        if name and (model := self._resolve(name)) is not None:
            if model not in self.loaded:
                self.loaded.add(model)
                self.stats.loads[model] += 1
            return model
        status, message = (404, not_found_message(name)) if name else (400, "model is required")
        conn.respond_json(status, dialect.error(message, status))
        return None

    def _overloaded(self, conn: _Connection, dialect: Dialect) -> bool:
        if self.stats.in_flight >= self.config.slots + self.config.max_queue:
            self.stats.overloaded += 1
            conn.respond_json(503, dialect.error(BUSY_MESSAGE, 503))
            return True
        return False

    def _generation(self, conn: _Connection, dialect: Dialect, raw: bytes) -> None:
        body = _json_object(conn, dialect, raw)
        if body is None or (model := self._model(conn, dialect, body)) is None:
            return
        stats = self.stats
        stats.requests += 1
        stats.requests_by_model[model] += 1
        stats.last_request = body
        if not self._overloaded(conn, dialect):
            self.admit(_Answer(self, conn, dialect, body))

    def _embedding(self, conn: _Connection, dialect: Dialect, raw: bytes) -> None:
        body = _json_object(conn, dialect, raw)
        if body is None or (model := self._model(conn, dialect, body)) is None:
            return
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            conn.respond_json(400, dialect.error("invalid input type", 400))
            return
        self.stats.embed_requests += 1
        self.stats.last_request = body
        if not self._overloaded(conn, dialect):
            self.admit(_Embedding(self, conn, dialect, model, texts))


class _Job:
    """A request counted in at the host: waiting for a slot, then answered."""

    def __init__(self, host: FastStandIn, conn: _Connection, dialect: Dialect) -> None:
        self.host, self.conn, self.dialect = host, conn, dialect
        self.arrived = time.time()
        self.started_ns = time.perf_counter_ns()
        self.holds_slot = self.counted_out = False
        host.stats.started_at.append(self.arrived)
        conn.job = self

    def begin(self) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        """The client went away."""
        self.host.release(self)

    def finish(self, data: bytes) -> None:
        """The answer's last bytes: sent, then the slot is given on."""
        self.conn.write_last(data)
        self.host.release(self)


class _Embedding(_Job):
    def __init__(self, host, conn, dialect, model: str, texts: list[str]) -> None:
        super().__init__(host, conn, dialect)
        self.model, self.texts = model, texts

    def begin(self) -> None:
        stats = self.host.stats
        stats.embedded.update(self.texts)
        stats.embedded_by_model[self.model] += len(self.texts)
        vectors = [simulated_embedding(self.model, text) for text in self.texts]
        counters = {
            "total_duration": time.perf_counter_ns() - self.started_ns,
            "load_duration": 0,
            "prompt_eval_count": sum(len(text.split()) for text in self.texts),
        }
        payload = self.dialect.embeddings(self.model, vectors, counters)
        self.finish(self.conn.whole(200, dumps(payload), _JSON))


class _Answer(_Job):
    """A generation: the first chunk after a quarter of the latency, the rest after the
    remaining three quarters (as the ASGI stand-in times them)."""

    def __init__(self, host, conn, dialect, body: dict) -> None:
        super().__init__(host, conn, dialect)
        self.body = body
        self.timer: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        config = self.host.config
        self.tokens, self.reason, self.prompt_count = planned_reply(config, self.dialect, self.body)
        self.stream = self.body.get("stream", self.dialect.stream_default)
        self.pieces = split_tokens(self.tokens, config.chunks) if self.stream else []
        self.prompt_begin = time.perf_counter_ns()
        self.timer = self.conn.loop.call_later(config.latency_ms / 4e3, self._first)

    def _first(self) -> None:
        self.eval_begin = time.perf_counter_ns()
        latency = self.host.config.latency_ms
        if self.pieces:
            name = self.body["model"]
            first = _chunk(self.dialect.chunk(name, self.pieces[0]))
            self.conn.write(self.conn.stream_head(self.dialect) + first)
            self.timer = self.conn.loop.call_later(latency * 3 / 4e3, self._last, 1)
        else:
            if self.stream:
                self.conn.write(self.conn.stream_head(self.dialect))
            self.timer = self.conn.loop.call_later(latency * 3 / 4e3, self._last, 0)

    def _last(self, sent: int) -> None:
        self.timer = None
        name, dialect = self.body["model"], self.dialect
        done = time.perf_counter_ns()
        counters = {
            "total_duration": done - self.started_ns,
            "load_duration": 0,
            "prompt_eval_count": self.prompt_count,
            "prompt_eval_duration": self.eval_begin - self.prompt_begin,
            "eval_count": len(self.tokens),
            "eval_duration": done - self.eval_begin,
        }
        if self.stream:
            parts = [dialect.chunk(name, piece) for piece in self.pieces[sent:]]
            parts.append(dialect.final_stream(name, self.reason, counters, self.body))
            self.finish(b"".join(_chunk(p) for p in parts) + b"0\r\n\r\n")
        else:
            final = dialect.final(name, "".join(self.tokens), self.reason, counters)
            self.finish(self.conn.whole(200, dumps(final), _JSON))

    def abandon(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        super().abandon()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_object(conn: _Connection, dialect: Dialect, raw: bytes) -> dict | None:
    """The body as a JSON object, or None after answering 400 as Ollama does."""
    if not raw:
        conn.respond_json(400, dialect.error("missing request body", 400))
        return None
    try:
        body = json.loads(raw)
    except ValueError as exc:
        conn.respond_json(400, dialect.error(str(exc), 400))
        return None
    if not isinstance(body, dict):
        conn.respond_json(400, dialect.error("request body must be a JSON object", 400))
        return None
    return body


class _Connection(asyncio.Protocol):
    """One client connection: requests parsed as they arrive, one answered at a time."""

    def __init__(self, host: FastStandIn) -> None:
        self.host = host
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.job: _Job | None = None  # the request being answered (a job) or None
        self.answering = False
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.job is not None:
            job, self.job = self.job, None
            job.abandon()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        """Answer the next complete request in the buffer, if none is being answered."""
        while not self.answering and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 64 * 1024:
                    self._fail(431, b"request header fields too large")
                return
            head = bytes(self.buffer[:end])
            lower = head.lower()
            if b"\r\ntransfer-encoding:" in lower:
                self._fail(501, b"chunked request bodies are not spoken here")
                return
            at = lower.find(b"\r\ncontent-length:")
            stop = head.find(b"\r\n", at + 2)
            try:
                length = int(head[at + 17 : stop if stop >= 0 else len(head)]) if at >= 0 else 0
            except ValueError:
                self._fail(400, b"bad Content-Length")
                return
            if length > BODY_LIMIT:
                self._fail(413, b"request body too large")
                return
            if len(self.buffer) < end + 4 + length:
                return
            raw = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            line = head.split(b"\r\n", 1)[0]
            method, target, version = ([*line.split(b" "), b"", b""])[:3]
            self.close_after = version != b"HTTP/1.1" or b"\r\nconnection: close" in lower
            self.answering = True
            self.host.route(self, method, target, raw)

    def _fail(self, status: int, message: bytes) -> None:
        self.close_after = True
        self.answering = True
        self.respond(status, message, b"text/plain")

    # -- writing ---------------------------------------------------------------------------

    def whole(self, status: int, body: bytes, content_type: bytes) -> bytes:
        reason = HTTPStatus(status).phrase.encode()
        keep = b"close" if self.close_after else b"keep-alive"
        return (
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n%s"
            % (status, reason, content_type, len(body), keep, body)
        )

    def stream_head(self, dialect: Dialect) -> bytes:
        keep = b"close" if self.close_after else b"keep-alive"
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: %s\r\n\r\n" % (dialect.content_type, keep)
        )

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def write_last(self, data: bytes) -> None:
        """The answer's end: the next request may be read (or the connection closed)."""
        self.job = None
        self.write(data)
        self.answering = False
        if self.close_after:
            if self.transport is not None:
                self.transport.close()
            return
        if self.buffer:
            self.loop.call_soon(self._next)

    def respond(self, status: int, body: bytes, content_type: bytes) -> None:
        self.write_last(self.whole(status, body, content_type))

    def respond_json(self, status: int, payload: Any) -> None:
        self.respond(status, dumps(payload), _JSON)


def main(argv: Sequence[str] | None = None) -> None:
    """Like ``python -m tests.support.standin_process``, from this host."""
    config, port = parse_args(argv)
    asyncio.run(FastStandIn(config, port=port).serve())


if __name__ == "__main__":
    main()
