"""Fixtures shared by the evaluation tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def listening() -> Iterator[tuple[int, list[object]]]:
    """A TCP server on the host's loopback that records any connection it gets: its port,
    and the connections (a sandboxed program must reach none)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """``listening()`` for one test."""
    with listening() as listened:
        yield listened
