"""A server that sends only keep-alive pings (SSE comments) is given up on after the
read timeout: llama-cpp-python's server pings every 15 s, and a try with
``request_timeout_s: 20`` waited 53 s for its first token with no attempt given up
(newcomer recheck-4), while the log said "a try gives up after 20 s"."""

from __future__ import annotations

import asyncio
import contextlib
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from evaluation.backends import GenerationRequest, OpenAICompatBackend
from evaluation.errors import BackendTimeout
from evaluation.spec import GenerationParams, HostSpec
from evaluation.suites import Message

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.contextmanager
def pinging_server(event: bytes = b"") -> Iterator[str]:
    """Answers each request with an event stream of ``: ping`` comments every 20 ms,
    after ``event`` (whole ``data:`` lines) if given, until the client hangs up."""
    stop = threading.Event()

    class Pinging(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            try:
                self.request.sendall(_HEAD + (_chunk(event) if event else b""))
                while not stop.is_set():
                    self.request.sendall(_chunk(b": ping - 2026-11-29\r\n\r\n"))
                    time.sleep(0.02)
            except OSError:
                return  # the client hung up

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Pinging)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


async def _generate(url: str, timeout_s: float) -> BackendTimeout:
    host = HostSpec("llama-cpp", url, kind="openai")
    request = GenerationRequest("m", (Message("user", "hi"),), GenerationParams())
    async with OpenAICompatBackend(
        host, timeout_s=timeout_s, first_request_timeout_s=timeout_s
    ) as backend:
        with pytest.raises(BackendTimeout) as caught:
            # the guard only keeps the old code from hanging the suite
            await asyncio.wait_for(backend.generate(request), 30)
    return caught.value


@pytest.mark.parametrize(
    "event", [b"", b'data: {"choices": [{"delta": {"content": "Hi"}}]}\r\n\r\n']
)
def test_pings_alone_do_not_keep_a_try_waiting(event: bytes) -> None:
    """Before the first token, and after one."""
    with pinging_server(event) as url:
        error = asyncio.run(_generate(url, timeout_s=0.3))
    assert str(error) == "llama-cpp (model 'm'): no answer within 0.3 s"
    assert error.outcome == "timeout"
