"""Storing generation outcomes behind the requests.

A lane that waited for its own record's transaction before its next request left its
host slot idle for that long on every generation: at 4 slots and 200 ms requests the
end-to-end sweep ran at 0.83-0.87 of the host's capacity (benchmarks/perf/sweep_e2e.py).
Here a lane hands its record over and goes straight on; one writer stores whatever has
queued up, in one transaction, in a worker thread (so neither the event loop nor any
request waits on the database), and the next batch forms while it writes. The writer
lets records gather for GATHER_S before a write (a flush does not wait for that):
written one by one, each generation's transaction (five statements and a commit) held
the interpreter long enough to delay the lanes' own work, ~1.5% of a 4-slot host's
capacity (benchmarks/perf/sweep_e2e.py).

What a kill can lose is unchanged in kind: the records not yet committed (the cases in
flight, and those finished during the last GATHER_S and its write), which a rerun
redoes, since a generation is stored only under its unique key. An interrupted run
(Ctrl-C, SIGTERM) first stores what has gathered (:func:`flush_all`), and a writer
cancelled with its run writes what it holds before it ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import weakref
from collections.abc import Awaitable, Callable, Sequence

from evaluation.run._work import GenerationRecord

Write = Callable[[list[GenerationRecord]], None]
OnStored = Callable[[Sequence[GenerationRecord]], Awaitable[None]]  # the batch just stored
GATHER_S = 0.25
_LIVE: weakref.WeakSet[RecordWriter] = weakref.WeakSet()  # writers with a loop, for flush_all


class RecordWriter:
    """Queues records and stores them in batches, one transaction per batch.

    ``put`` returns at once (it raises the error of an earlier write that failed);
    ``flush`` returns once everything put so far is stored, or raises the write's error.
    """

    def __init__(self, write: Write, on_stored: OnStored) -> None:
        self._write = write
        self._on_stored = on_stored
        self._queued: list[GenerationRecord] = []
        self._writing: asyncio.Task[None] | None = None
        self._flushing = asyncio.Event()  # set while a flush waits: write without gathering
        self._flushers = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def put(self, records: Sequence[GenerationRecord]) -> None:
        self.put_now(records)

    def put_now(self, records: Sequence[GenerationRecord]) -> None:
        """``put`` from a callback of the writer's event loop (records a lane worker
        process sent back: ``evaluation.run._workers``)."""
        self._raise_failure()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            _LIVE.add(self)
        self._queued.extend(records)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain(), name="evalflow-record-writer")

    async def flush(self) -> None:
        self._flushers += 1
        self._flushing.set()
        try:
            while self._writing is not None and not self._writing.done():
                # shield: a chunk cancelled while it waits must not cancel other lanes' writes
                await asyncio.shield(self._writing)
        finally:
            self._flushers -= 1
            if not self._flushers:
                self._flushing.clear()
        self._raise_failure()

    async def _drain(self) -> None:
        """Write until nothing is queued. Cancelled (a run cancelled or interrupted while
        it writes), it still writes everything queued, then ends cancelled: those are
        generations already paid for, and the rerun would ask for them again."""
        cancelled = False
        while self._queued:
            if not cancelled:
                try:
                    await asyncio.wait_for(self._flushing.wait(), GATHER_S)
                except TimeoutError:
                    pass
                except asyncio.CancelledError:
                    cancelled = True
            batch, self._queued = self._queued, []
            write = asyncio.ensure_future(asyncio.to_thread(self._write, batch))
            while not write.done():
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError:
                    cancelled = True
            write.result()  # a failed write fails the writer (see put and flush)
            if not cancelled:
                await self._on_stored(batch)
        if cancelled:
            raise asyncio.CancelledError

    def _raise_failure(self) -> None:
        task = self._writing
        if task is not None and task.done() and not task.cancelled() and task.exception():
            raise task.exception()  # type: ignore[misc]


def flush_all(timeout_s: float) -> None:
    """From any thread but the writers' own: store what every live writer has gathered,
    waiting at most ``timeout_s`` in all (an interrupted run calls this before it exits;
    errors are left to the run's own flush)."""
    pending = []
    for writer in list(_LIVE):
        loop = writer._loop
        if loop is not None and loop.is_running():
            pending.append(asyncio.run_coroutine_threadsafe(writer.flush(), loop))
    if pending:
        concurrent.futures.wait(pending, timeout=timeout_s)
