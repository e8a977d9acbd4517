"""The record writer stores outcomes behind the requests: a lane never waits for its
own record's transaction, records that queue up share one, and a failed write is not
lost silently."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from evaluation.run import _record_writer
from evaluation.run._record_writer import RecordWriter


class _Record:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok


def test_put_returns_before_the_write_and_queued_records_share_one_transaction():
    batches: list[int] = []
    stored: list[tuple[int, int]] = []
    release = threading.Event()

    def write(records):
        release.wait(5)  # a slow database
        batches.append(len(records))

    async def on_stored(batch) -> None:
        stored.append((len(batch), sum(not r.ok for r in batch)))

    async def main() -> float:
        writer = RecordWriter(write, on_stored)
        started = time.perf_counter()
        for i in range(10):
            await writer.put([_Record(ok=i != 3)])
            await asyncio.sleep(0.01)  # the lane's next request
        took = time.perf_counter() - started
        await asyncio.sleep(_record_writer.GATHER_S + 0.1)  # the first write has begun
        for _ in range(5):
            await writer.put([_Record()])
        release.set()
        await writer.flush()
        return took

    took = asyncio.run(main())
    assert took < 0.5  # no put waited for a write
    assert batches == [10, 5]  # gathered, then those queued behind the slow write
    assert stored == [(10, 1), (5, 0)]


def test_a_flush_writes_at_once_without_waiting_to_gather(monkeypatch):
    monkeypatch.setattr(_record_writer, "GATHER_S", 30.0)
    batches: list[int] = []

    async def on_stored(batch) -> None:
        pass

    async def main() -> float:
        writer = RecordWriter(lambda records: batches.append(len(records)), on_stored)
        await writer.put([_Record(), _Record()])
        started = time.perf_counter()
        await writer.flush()
        return time.perf_counter() - started

    assert asyncio.run(main()) < 5  # not the 30 s gathering window
    assert batches == [2]


def test_flush_raises_a_failed_write_and_later_puts_refuse():
    def write(records):
        raise OSError("disk full")

    async def on_stored(batch) -> None:  # pragma: no cover - never reached
        raise AssertionError("a failed write was counted as stored")

    async def main() -> None:
        writer = RecordWriter(write, on_stored)
        await writer.put([_Record()])
        with pytest.raises(OSError, match="disk full"):
            await writer.flush()
        with pytest.raises(OSError, match="disk full"):
            await writer.put([_Record()])

    asyncio.run(main())


def test_flush_all_stores_what_gathered_from_another_thread(monkeypatch):
    """An interrupted run (its signal handled in another thread) stores what the lanes
    finished before it exits, without waiting out the gathering window."""
    monkeypatch.setattr(_record_writer, "GATHER_S", 30.0)
    batches: list[int] = []

    async def on_stored(batch) -> None:
        pass

    async def main() -> None:
        writer = RecordWriter(lambda records: batches.append(len(records)), on_stored)
        await writer.put([_Record(), _Record(), _Record()])
        flusher = threading.Thread(target=_record_writer.flush_all, args=(5.0,))
        flusher.start()
        while flusher.is_alive():
            await asyncio.sleep(0.01)

    started = time.perf_counter()
    asyncio.run(main())
    assert time.perf_counter() - started < 5
    assert batches == [3]


def test_a_writer_cancelled_with_its_run_writes_what_it_holds(monkeypatch):
    """Cancelling the run (from the UI, or on Ctrl-C) cancels the writer too, while it
    gathers or while a batch is in the database: neither batch is lost."""
    monkeypatch.setattr(_record_writer, "GATHER_S", 30.0)
    batches: list[int] = []
    in_database = threading.Event()
    release = threading.Event()

    def write(records):
        batches.append(len(records))
        in_database.set()
        release.wait(5)

    async def on_stored(batch) -> None:
        pass

    async def main() -> None:
        writer = RecordWriter(write, on_stored)
        await writer.put([_Record(), _Record()])
        await asyncio.sleep(0.05)
        writer._writing.cancel()  # while it gathers
        await asyncio.sleep(0.05)  # the first batch is now in the database
        await writer.put([_Record()])  # queued behind it
        writer._writing.cancel()  # while it writes
        assert await asyncio.to_thread(in_database.wait, 5)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await writer._writing

    asyncio.run(main())
    assert batches == [2, 1]
