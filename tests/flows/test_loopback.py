"""Every evalflow command reaches this machine's loopback directly: Prefect's API on
127.0.0.1 (a `prefect server start` named by PREFECT_API_URL, Prefect's temporary
server of `serve`) is not asked through a proxy for the web from the environment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from flows.cli import main

PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOOPBACK = ["corp.example", "127.0.0.1", "localhost", "::1"]


@pytest.fixture
def dead_proxy(monkeypatch) -> None:
    """A proxy for the web that nothing answers, and the user's own NO_PROXY."""
    for name in PROXIES:
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("NO_PROXY", "corp.example")
    monkeypatch.delenv("no_proxy", raising=False)


class _PrefectHealth(BaseHTTPRequestHandler):
    """What `doctor` asks of a Prefect API: its health and its version."""

    def do_GET(self) -> None:
        body = {"/api/health": b"true", "/api/admin/version": b'"3.0.0"'}.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *_) -> None:
        pass


@contextmanager
def _prefect_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _PrefectHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_a_loopback_prefect_api_url_is_not_asked_through_a_proxy(dead_proxy, database_url, capsys):
    """A newcomer's `prefect server start` on 127.0.0.1 did not answer through their
    proxy: doctor said FAIL (ConnectError), and run refused the API."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with _prefect_api() as url, temporary_settings({PREFECT_API_URL: url}):
        main(["--database", database_url, "doctor"])
    assert f"OK    prefect api  {url}: healthy (server 3.0.0)" in capsys.readouterr().out


def test_serve_without_an_api_url_keeps_prefects_temporary_server_off_the_proxy(
    dead_proxy, monkeypatch
):
    """Without PREFECT_API_URL, `serve` runs on Prefect's temporary server on 127.0.0.1:
    through a dead proxy it gave up ('Timed out while attempting to connect to ephemeral
    Prefect API server', exit 1). Loopback is off the proxies before Prefect starts."""
    import os

    import deployments.serve
    import tasks.adapters.deployment_runs

    seen: dict[str, str] = {}
    monkeypatch.setattr(tasks.adapters.deployment_runs, "run_control_from_settings", lambda: None)
    monkeypatch.setattr(
        deployments.serve,
        "serve_all",
        lambda *_, **__: seen.update({n: os.environ[n] for n in ("NO_PROXY", "no_proxy")}),
    )
    assert main(["serve", "--no-metrics"]) == 0
    assert {name: value.split(",") for name, value in seen.items()} == {
        "NO_PROXY": LOOPBACK,
        "no_proxy": LOOPBACK,
    }
