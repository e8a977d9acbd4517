"""Real sockets that accept connections and then fail them, as a hung or wrong server
does: ``reset`` reads the request and resets the connection (RST), ``silent`` reads it
and never answers (the connection stays open until the block ends). With ``models``,
Ollama's model list (``GET /api/tags``) is answered, so a run's preflight passes, and
every other request (a generation) gets the failure."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Literal


class FailingServer:
    """``url``; ``failed``: the requests it failed so far (set once one came in);
    ``close()``: stop listening and close the connections it holds (they end with FIN)."""

    def __init__(self, url: str, close: Callable[[], None]) -> None:
        self.url = url
        self.failed = 0
        self.one_failed = threading.Event()
        self.close = close


@contextlib.contextmanager
def failing_server(
    mode: Literal["reset", "silent"], models: tuple[str, ...] | None = None
) -> Iterator[FailingServer]:
    """A listening socket on 127.0.0.1, until the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    accepted: list[socket.socket] = []  # idle keep-alive ones and those it holds

    def close() -> None:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # FIN, and wakes a thread reading it
            with contextlib.suppress(OSError):
                conn.close()

    server = FailingServer(f"http://127.0.0.1:{listener.getsockname()[1]}", close)

    def answer(conn: socket.socket) -> None:
        # An idle keep-alive connection stays open until the client or ``close`` ends
        # it: closing it after a while raced the client's next request on it (a reset
        # the request never reached this server for), however loaded the machine.
        while True:
            try:
                request = conn.recv(65536)
            except OSError:
                request = b""
            if not request:
                conn.close()
                return
            if models is not None and request.startswith(b"GET /api/tags"):
                body = json.dumps({"models": [{"name": m, "model": m} for m in models]})
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
                )
                continue  # keep-alive: the client may send its next request here
            break
        server.failed += 1
        server.one_failed.set()
        if mode == "reset":  # linger 0: close sends RST, not FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        close()
