"""An interrupted run asks its hosts for nothing more: once the exit begins, no backend
sends another call (those in flight finish and are stored by the exit's flush), whatever
waits to send one: the next case of a chunk, a lane waiting for a slot, a retry."""

from __future__ import annotations

import asyncio
import threading

import pytest

from evaluation.backends import OllamaBackend, _client, stop_sending
from evaluation.backends.retry import RetryPolicy
from evaluation.run._generate import run_chunk
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.suites import load_suite
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")


def test_nothing_is_sent_after_the_stop_and_the_call_in_flight_is_stored(monkeypatch):
    monkeypatch.setattr(_client, "_SENDING_STOPPED", threading.Event())
    cfg = Config("llama3.2:3b", GenerationParams(num_predict=8), PromptTemplate("default"))
    items = [WorkItem(cfg, case, SUITE.name) for case in SUITE.cases[:4]]
    stored = []

    async def sink(records) -> None:
        stored.extend(records)
        if len(stored) == 1:  # the signal comes while the second case is in flight
            threading.Thread(target=stop_sending).start()

    async def scenario(server) -> None:
        backend = OllamaBackend(server.host("gpu-a", slots=1), timeout_s=5.0)
        chunk = run_chunk(
            backend, items, suite=SUITE, policy=RetryPolicy(max_attempts=1), sink=sink
        )
        with pytest.raises(TimeoutError):  # its next call waits for the process to exit
            await asyncio.wait_for(chunk, timeout=1.0)
        await backend.aclose()

    with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=100.0)) as server:
        asyncio.run(scenario(server))
        requests = server.stats.requests
    assert len(stored) in (1, 2)  # the second case was in flight or not yet started
    assert requests == len(stored)  # nothing was asked after the stop that was not stored
    assert requests < len(items)
