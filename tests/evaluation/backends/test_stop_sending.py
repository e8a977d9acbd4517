"""An interrupted run asks its hosts for nothing more: once the exit begins, no backend
sends another call (those in flight finish and are stored by the exit's flush), whatever
waits to send one: the next case of a chunk, a lane waiting for a slot, a retry. A call
waiting for one of the machine's slot locks is not in flight: the stop neither counts it
nor waits for it, and it parks."""

from __future__ import annotations

import asyncio
import threading

import pytest

from evaluation.backends import OllamaBackend, _machine_slots, _sending, stop_sending
from evaluation.backends._machine_slots import LOCK_DIR_ENV, MachineSlots
from evaluation.backends.retry import RetryPolicy
from evaluation.run._generate import run_chunk
from evaluation.run._in_flight import case_in_flight, cases_in_flight
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.suites import load_suite
from tests.conftest import REPO
from tests.support.lane_runner import until
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")


def test_nothing_is_sent_after_the_stop_and_the_call_in_flight_is_stored(monkeypatch):
    monkeypatch.setattr(_sending, "_SENDING_STOPPED", threading.Event())
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


def test_a_call_waiting_for_the_machines_slot_locks_is_not_in_flight_and_parks_on_a_stop(
    tmp_path, monkeypatch
):
    """Another process (here: another set of open files) holds the host's one slot lock:
    the case whose call waits for it has nothing on the wire. It counted as in flight, so
    Ctrl-C said "waiting up to 5 s for the 1 request(s) in flight" and waited them out."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.setattr(_sending, "_SENDING_STOPPED", threading.Event())
    monkeypatch.setattr(_sending, "_STOP_LISTENERS", [])
    parked = []

    async def park_here() -> None:
        parked.append(1)
        await asyncio.Event().wait()

    monkeypatch.setattr(_machine_slots, "park", park_here)
    url = "http://127.0.0.1:9/"
    theirs, mine = MachineSlots(url, 1), MachineSlots(url, 1)
    started, sent = [], []

    async def case() -> None:
        async with case_in_flight():
            started.append(1)  # from here to the lock's wait, nothing yields to main
            async with mine.hold():
                sent.append(1)  # where the request would go on the wire

    async def main() -> None:
        async with theirs.hold():
            task = asyncio.create_task(case())
            await until(lambda: started == [1])
            assert cases_in_flight() == 0  # waits for the lock: nothing on the wire
            threading.Thread(target=stop_sending).start()
            await until(lambda: parked == [1])
        assert sent == [] and not task.done()
        task.cancel()

    asyncio.run(main())
    theirs.close()
    mine.close()
