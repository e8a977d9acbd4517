"""Serving a local web page (review, view): the port is bound before anything is
written, so a port in use is refused in one line with the database unchanged."""

from __future__ import annotations

import errno
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from evaluation.errors import EvalError


def bind(
    host: str, port: int, *, host_option: str = "--host", port_option: str = "--port"
) -> socket.socket:
    """A listening socket on ``host:port``, or an EvalError saying why not (naming the
    options the user gave them with)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise EvalError(f"{host_option} {host!r}: cannot serve there ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = (
            f"the port is in use (another program listens there): pick another {port_option}"
            if exc.errno == errno.EADDRINUSE
            else f"{exc.strerror}"
        )
        raise EvalError(f"{port_option} {port}: cannot serve on {host}:{port}: {why}") from exc
    sock.set_inheritable(True)
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on the already bound ``sock`` until Ctrl+C (the cyclic collector
    back, where the verb started without it: ``_collector``)."""
    import uvicorn

    from flows.cli._collector import resume

    resume()

    host, port = sock.getsockname()[:2]
    # No websockets and no lifespan: no served app uses them, and their modules (the
    # websockets package, uvicorn's lifespan) were ~0.02 s of every start (issue 46)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", ws="none", lifespan="off"
    )
    server = _keeping_ignored(uvicorn.Server)(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _keeping_ignored(server_class: type) -> type:
    """``server_class`` (uvicorn's ``Server``) whose signal handling leaves a signal the
    process started ignoring ignored: a script's background job starts with SIGINT
    ignored, and a command that only serves keeps it so (docs/hosts-that-fail.md), but
    uvicorn took it: a `kill -INT` of a background `view` stopped it, exit 0 and no line
    (newcomers' S7). SIGTERM, and a Ctrl-C at a terminal, stop it as before."""

    class KeepingIgnored(server_class):  # type: ignore[misc, valid-type]
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            ignored = [
                s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is signal.SIG_IGN
            ]
            with super().capture_signals():
                for signum in ignored:
                    signal.signal(signum, signal.SIG_IGN)
                yield

    return KeepingIgnored
