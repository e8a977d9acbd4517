"""The stand-in Ollama server as a separate process, with its counters over HTTP.

``python -m tests.support.standin_process --port P --slots N --latency-ms L --models a,b``
serves the stand-in (``tests.support.standin_ollama``) and answers ``GET /_stats`` with
its ``StandInStats`` as JSON (requests, max_in_flight, requests_by_model, loads, the busy
span, ...; ``?spans=1``: each request's start and end; ``POST /_stats`` zeroes them), so
a test or benchmark in another process can check what the host saw.
``StandInProcess`` starts one, waits until it answers, reads its stats and stops it
(``fast=True``: ``tests.support.standin_fast``'s light host instead, same counters).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.ollama_wire import respond_json
from tests.support.standin_ollama import StandIn, StandInStats, parse_args, serve

REPO = Path(__file__).resolve().parents[2]


class StatsStandIn(StandIn):
    """A stand-in that also answers ``GET /_stats``."""

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"] == "/_stats":
            if scope["method"] == "POST":
                self.stats = StandInStats()
            spans = b"spans=1" in scope.get("query_string", b"")
            await respond_json(send, 200, stats_json(self.stats, self.config.slots, spans=spans))
            return
        await super().__call__(scope, receive, send)


def stats_json(s: StandInStats, slots: int, *, spans: bool = False) -> dict[str, Any]:
    """A stand-in's counters; ``spans``: each request's start and end too. ``cpu_s``: the
    serving process's CPU since the counters were zeroed."""
    return ({"spans": s.spans} if spans else {}) | {
        "requests": s.requests,
        "in_flight": s.in_flight,
        "max_in_flight": s.max_in_flight,
        "overloaded": s.overloaded,
        "requests_by_model": dict(s.requests_by_model),
        "loads": dict(s.loads),
        "model_loads": s.model_loads,
        "slots": slots,
        "embed_requests": s.embed_requests,
        "texts_embedded": sum(s.embedded.values()),
        "most_embeddings_of_one_text": max(s.embedded.values(), default=0),
        # the host's busy span: its first request's start and its last one's end
        "first_started": min(s.started_at, default=None),
        "last_ended": max(s.ended_at, default=None),
        "cpu_s": time.process_time() - s.cpu_started,
    }


class StandInProcess:
    """One stand-in host in a subprocess (``start``, ``stats``, ``stop``)."""

    def __init__(
        self,
        port: int,
        *,
        slots: int,
        latency_ms: float,
        models: Sequence[str],
        load_ms=0.0,
        fast: bool = False,
    ) -> None:
        self.port = port
        # ``fast``: the light host of ``standin_fast`` (no faults, no load times)
        self.module = "tests.support.standin_fast" if fast else "tests.support.standin_process"
        self.args = [
            "--port", str(port), "--slots", str(slots), "--latency-ms", str(latency_ms),
            "--load-ms", str(load_ms), "--models", ",".join(models),
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> StandInProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=REPO,
            # the repository first, then what PYTHONPATH holds (packages installed with
            # ``pip --target``, as on a machine where they are carried in)
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, (str(REPO), os.environ.get("PYTHONPATH")))
                ),
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stand-in on port {self.port} exited at start")
            try:
                httpx.get(self.url + "/api/version", timeout=1.0).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"stand-in on port {self.port} did not start in {timeout_s} s")

    def stats(self, *, spans: bool = False) -> dict[str, Any]:
        """The counters; ``spans``: each request's (start, end), ``time.time()``."""
        params = {"spans": "1"} if spans else {}
        return httpx.get(self.url + "/_stats", params=params, timeout=5.0).json()

    def reset_stats(self) -> dict[str, Any]:
        return httpx.post(self.url + "/_stats", timeout=5.0).json()

    def stop(self) -> None:
        """Stop the process (a host going down: connections are refused from then on)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def main(argv: Sequence[str] | None = None) -> None:
    """Like ``python -m tests.support.standin_ollama``, plus ``GET /_stats``."""
    config, port = parse_args(argv)
    serve(StatsStandIn(config, port=port), port)


if __name__ == "__main__":
    main()
