"""A lane worker's reader threads when its loop has closed (the worker ending on a run's
SIGTERM): a message or the drain that arrives then is dropped in silence. A 1-in-15
SIGTERM of `run --workers 2` printed `Exception in thread Thread-1 (read): Traceback
...` (RuntimeError: Event loop is closed) before the process was gone (newcomer F10)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import types

import pytest

from evaluation.run import _workers


def _failing_runner(plan, seats):
    raise RuntimeError("this runner does not open")  # _serve returns: its loop closes


def test_a_message_or_the_drain_after_the_workers_loop_closed_raises_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raised: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda hook: raised.append(hook.exc_value))
    monkeypatch.setattr(_workers, "stop_sending", lambda: None)  # this process's: left alone
    monkeypatch.setattr(_workers, "wait_for_cases_in_flight", lambda *a: None)
    run_end, worker_end = multiprocessing.Pipe()
    stop = threading.Event()
    before = set(threading.enumerate())
    asyncio.run(_workers._serve(worker_end, stop, None, None, _failing_runner, None, {}))
    assert run_end.recv()[0] == "error"  # the runner's failure, sent before the loop closed
    threads = [t for t in threading.enumerate() if t not in before]
    assert len(threads) == 2  # the reader of the run's messages, the drain on stop

    run_end.send(("cancel", 1))  # a message the closed loop cannot take
    stop.set()  # the run's stop: the drain's "drained" to a closed loop
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert raised == []


def test_the_runs_reader_of_a_worker_stops_quietly_once_the_runs_loop_closed() -> None:
    loop = asyncio.new_event_loop()
    loop.close()  # the run's loop, ended (interrupted) while a worker still sends
    run_end, worker_end = multiprocessing.Pipe()
    worker_end.send(("records", []))
    lanes = types.SimpleNamespace(_loop=loop, _on_message=print, _on_exit=print)
    _workers.LaneWorkers._read(lanes, types.SimpleNamespace(conn=run_end))  # returns
    worker_end.close()
    _workers.LaneWorkers._read(lanes, types.SimpleNamespace(conn=run_end))  # EOF: returns
