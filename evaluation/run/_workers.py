"""Lane workers: a run's generation lanes in several processes, each with its own event
loop, HTTP client and share of the hosts' slots.

One process's generation phase costs ~0.9 ms of CPU per generation (one event loop,
one GIL: ~1,100 generations a second per core), and a 64-slot host answering in 20 ms
serves 3,200 a second: from one process it cannot be kept full
(benchmarks/perf/throughput_goal.py). With ``workers`` > 1 the run's process keeps the
dispatch (``dispatch``: every lane, the queue, the hosts' pace, the thefts) and its one
record writer, and a lane's chunk runs in a worker process instead:

- Each worker has its share of every host's slots as *seats* (a host's seats are its
  slots, so a lane always finds a free one). A chunk sent to a seat keeps where it
  stands (``Cursor``) in the seat's cell of memory shared with the worker, so the
  worker's claims and the dispatcher's thefts stay exact across the two processes.
- The worker runs the chunk as the run's process would (``open_runner``, e.g.
  ``tasks.lane_workers``: its own backends, and the hosts' slots through the same
  Prefect limits and machine-wide locks, which hold across processes: never more
  requests open than slots) and sends each record back as soon as it is known; the
  records go to the run's writer here (SQLite has one writer), and progress with them.
- Ctrl-C or SIGTERM (``stop_sending`` here) tells the workers through a shared event:
  they start nothing new, wait for their cases in flight, send their records, then say
  so (``drained``); until then their running chunks count as cases in flight here
  (``counted_elsewhere``), so the run's wait for what is in flight covers them. The
  workers ignore SIGINT and SIGTERM from their start on (a terminal, or a service
  manager, sends them to the whole group; ``_group_signals``): the run says when.
  The run's exit on a signal (``os._exit``, flows/run_control.py) would cut the workers
  off with their host slots listed for the next run ("held by dead run(s)"), so before
  it the interrupt's thread closes them (``close_on_exit``): each gives its slots back
  and ends, then the semaphores shared with them are unlinked (else multiprocessing's
  resource tracker warned of "leaked semaphore objects").
- ``kill -9`` of the run: the workers find their pipe closed and exit at once; what
  they had not sent back is not stored, and the rerun asks for exactly that (as for
  the run's own requests in flight). The names of the semaphores they share were
  unlinked once the workers were ready (``_semaphore_names``), so the resource tracker
  left behind has none to warn of. A worker that dies fails its running chunks
  (``WorkerDied``: the generate stage tries a chunk once more, on the other workers'
  seats, without what was stored) and its seats are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import itertools
import multiprocessing
import multiprocessing.util
import os
import pickle
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from evaluation.backends._sending import on_stop_sending, stop_sending
from evaluation.run._chunk import Chunk, Cursor
from evaluation.run._generate import ChunkOutcome
from evaluation.run._group_signals import deaf_children, ignore_group_signals
from evaluation.run._heap import fewer_collections, settled_heap
from evaluation.run._in_flight import counted_elsewhere, wait_for_cases_in_flight
from evaluation.run._semaphore_names import SemaphoreNames
from evaluation.run._slot_waits import LaneWatch
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.run._writer_process import picklable
from evaluation.spec import HostSpec

Sink = Callable[[Sequence[GenerationRecord]], None]
WorkerRunner = Callable[[HostSpec, Chunk, Sink, LaneWatch], Any]  # awaitable: a ChunkOutcome
"""``runner(host, chunk, sink, watch)``: ``watch`` is told of the lane's slot (sent back
to the run's process with the records: ``evaluation.run._slot_waits``)."""
LANE_STATES = ("waits", "holds", "holds_none")  # ``LaneWatch``'s, as a worker sends them
OpenRunner = Callable[[Any, Mapping[str, int]], AbstractAsyncContextManager[WorkerRunner]]
"""``open_runner(plan, shares)`` in a worker: what runs its chunks, given this worker's
seats per host; a module-level function (sent to the worker by name)."""

EXIT_WAIT_S = 60.0  # a worker gives its slots back as it exits; then it is killed
EXIT_NOW_KILL_WAIT_S = 0.5  # ``close_on_exit``: a worker killed is waited for this long
DRAIN_WAIT_S = 3600.0  # after a stop: the run's own wait decides how long it is waited for
SEND_EVERY_S = 0.005  # a worker's records go back together at most this late


class WorkerDied(RuntimeError):
    """A lane worker process ended while it ran chunks (or before it was ready)."""


def shares(slots: int, workers: int, offset: int = 0) -> list[int]:
    """A host's ``slots`` spread over ``workers`` as evenly as they go; the odd ones to
    the workers from ``offset`` on (hosts in turn, so small hosts spread out too)."""
    base, odd = divmod(slots, workers)
    return [base + ((w - offset) % workers < odd) for w in range(workers)]


@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing's process
    conn: Any  # its end of the pipe
    ready: asyncio.Future[None]
    sending: threading.Lock = field(default_factory=threading.Lock)  # loop and interrupt
    busy: int = 0  # chunks it runs
    waiting: int = 0  # of them, those whose lane waits for a slot (nothing on the wire)
    alive: bool = True
    drained: bool = False


@dataclass
class _Job:
    """A chunk running in a worker."""

    worker: _Worker
    seat: int
    items: list[WorkItem]  # as sent: records come back with their places in it
    sink: Sink
    context: contextvars.Context  # its lane's: the sink runs in it (a Prefect task run's)
    done: asyncio.Future[ChunkOutcome]
    watch: LaneWatch | None = None  # told of the lane's slot as the worker says
    abandoned: bool = False  # its lane stopped waiting: the seat is freed when it ends
    waits: bool = False  # its lane waits for a slot, as the worker last said


@dataclass
class _Seats:
    """The seats of the hosts, their owners, and which are free."""

    owner: list[_Worker] = field(default_factory=list)
    of_host: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    free: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    host_of: list[str] = field(default_factory=list)


_OPEN: set[LaneWorkers] = set()  # this process's, until closed


def close_on_exit(timeout_s: float) -> None:
    """From an interrupt's thread, just before the process exits without unwinding
    (``os._exit``): every open ``LaneWorkers`` told to exit (each worker gives back its
    host slots and ends; one still there after ``timeout_s`` is killed, its slots left
    listed for the next run), then the semaphores shared with them unlinked, as
    multiprocessing's exit hook would (``os._exit`` skips it)."""
    deadline = time.monotonic() + timeout_s
    for workers in list(_OPEN):
        workers.exit_now(deadline)
    multiprocessing.util._run_finalizers(0)  # SemLocks' unlink (exitpriority 0)


class LaneWorkers:
    """``count`` worker processes holding the lanes of ``hosts`` (see the module's
    text): made (they start at once), ``await ready()``, ``run`` chunks, ``close``."""

    def __init__(
        self,
        count: int,
        hosts: Sequence[HostSpec],
        open_runner: OpenRunner,
        plan: Any,
        *,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """``environment``: set in each worker before ``open_runner`` and ``plan`` are
        loaded there (settings read when their modules are imported)."""
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # a fork would copy the run's threads
        seats = sum(h.slots for h in hosts)
        self._cells = context.RawArray("q", 2 * seats)
        with SemaphoreNames() as self._names:  # unlinked once the workers are ready
            self._lock = context.Lock()
            self._stop = context.Event()
        self._seats = _Seats()
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count()
        self._freed = asyncio.Condition()
        self._closed = False
        per_worker: list[dict[str, int]] = [{} for _ in range(count)]
        offset = 0
        for host in hosts:
            for w, share in enumerate(shares(host.slots, count, offset)):
                per_worker[w][host.name] = share
            offset += host.slots % count
        self.workers: list[_Worker] = []
        for w in range(count):
            mine, theirs = context.Pipe()
            work = pickle.dumps((open_runner, plan, per_worker[w]))
            process = context.Process(
                target=_main,
                args=(mine, self._cells, self._lock, self._stop, dict(environment or {}), work),
                name=f"evalflow-lanes-{w}",
                daemon=True,
            )
            with deaf_children():
                process.start()
            mine.close()
            worker = _Worker(w, process, theirs, self._loop.create_future())
            self.workers.append(worker)
            threading.Thread(target=self._read, args=(worker,), daemon=True).start()
        for host in hosts:
            for worker, wanted in zip(self.workers, per_worker, strict=True):
                for _ in range(wanted[host.name]):
                    seat = len(self._seats.owner)
                    self._seats.owner.append(worker)
                    self._seats.host_of.append(host.name)
                    self._seats.of_host[host.name].append(seat)
                    self._seats.free[host.name].append(seat)
        self._unlisten = on_stop_sending(self._stop.set)
        _OPEN.add(self)

    async def ready(self) -> None:
        """Once every worker has opened its backends and slots (raises what failed);
        the names of the semaphores they share are unlinked then (``_semaphore_names``)."""
        await asyncio.gather(*(w.ready for w in self.workers))
        self._names.unlink()

    def in_flight(self) -> int:
        """Chunks running in workers that have not said they are drained, less those
        whose lane waits for a slot (from any thread; a lane runs one case at a time, so
        at most its cases in flight)."""
        return sum(max(0, w.busy - w.waiting) for w in self.workers if w.alive and not w.drained)

    @contextlib.contextmanager
    def counted(self) -> Iterator[None]:
        """While the block runs, a stop's wait for the cases in flight waits for these."""
        with counted_elsewhere(self.in_flight):
            yield

    async def run(
        self, host: HostSpec, chunk: Chunk, sink: Sink, watch: LaneWatch | None = None
    ) -> ChunkOutcome:
        """Run ``chunk`` on ``host`` in a worker with a free seat of it; each record, as
        it comes back, to ``sink`` (called in this loop); ``watch``: told of the lane's
        slot as the worker says (it waits for one, holds one, holds none)."""
        seat = await self._take_seat(host.name)
        worker = self._seats.owner[seat]
        job_id = next(self._ids)
        job = _Job(
            worker,
            seat,
            chunk.items,
            sink,
            contextvars.copy_context(),
            self._loop.create_future(),
            watch,
        )
        self._jobs[job_id] = job
        chunk.move_to(Cursor(self._cells, seat, self._lock))
        worker.busy += 1
        try:
            _send(worker, ("chunk", job_id, seat, host, chunk.items, chunk.earlier))
            return await job.done
        except OSError as exc:
            raise WorkerDied(f"lane worker {worker.index} is gone ({exc})") from exc
        finally:
            chunk.move_to(Cursor())  # the chunk's state back here, the seat's cell free
            if job.done.done() and not job.done.cancelled():
                self._end(job_id)
            else:  # cancelled: the worker may still claim items on the seat, so it is
                job.abandoned = True  # kept until the worker says the chunk ended
                with contextlib.suppress(OSError):
                    _send(worker, ("cancel", job_id))

    async def close(self) -> None:
        """Tell the workers to exit (each gives back its slots) and wait for them, at
        most ``EXIT_WAIT_S``; a worker still there then is killed."""
        if self._closed:
            return
        self._tell_exit()
        await asyncio.to_thread(self._join)
        for job in self._jobs.values():  # none when the run ended well
            if not job.done.done():
                job.done.set_exception(WorkerDied("the lane workers were closed"))

    def exit_now(self, deadline: float) -> None:
        """From any thread (``close_on_exit``): tell the workers to exit and wait for
        them until ``deadline`` (``time.monotonic``); those still there are killed."""
        if not self._closed:
            self._tell_exit()
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(EXIT_NOW_KILL_WAIT_S)

    def _tell_exit(self) -> None:
        self._closed = True
        _OPEN.discard(self)
        self._unlisten()
        for worker in self.workers:
            with contextlib.suppress(OSError):
                _send(worker, ("exit",))

    def _join(self) -> None:
        for worker in self.workers:
            worker.process.join(EXIT_WAIT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5.0)
            with contextlib.suppress(OSError):
                worker.conn.close()

    async def _take_seat(self, host: str) -> int:
        async with self._freed:
            while True:
                free = self._seats.free[host]
                if free:
                    seat = min(free, key=lambda s: self._seats.owner[s].busy)
                    free.remove(seat)
                    return seat
                if not any(self._seats.owner[s].alive for s in self._seats.of_host[host]):
                    raise WorkerDied(f"no lane worker left for host {host!r}")
                await self._freed.wait()

    def _end(self, job_id: int) -> None:
        job = self._jobs.pop(job_id)
        if job.waits:  # before ``busy``: read from another thread, never fewer than true
            job.worker.waiting -= 1
        job.worker.busy -= 1
        if job.worker.alive:
            self._seats.free[self._seats.host_of[job.seat]].append(job.seat)
        self._loop.create_task(self._notify())

    async def _notify(self) -> None:
        async with self._freed:
            self._freed.notify_all()

    def _read(self, worker: _Worker) -> None:
        """A worker's messages, handed to the loop in order (a thread per worker)."""
        try:
            while True:
                message = worker.conn.recv()
                if not _handed(self._loop, self._on_message, worker, message):
                    return  # the loop is closed: the run is ending, nobody reads it
        except (EOFError, OSError, pickle.UnpicklingError):
            _handed(self._loop, self._on_exit, worker)  # closed: nobody waits

    def _lane_state(self, job: _Job, state: str) -> None:
        """The job's lane waits for a slot, holds one or holds none, as its worker says:
        told to its watch, and a lane that waits is not in flight (``in_flight``)."""
        waits = state == "waits"
        if waits != job.waits:
            job.waits = waits
            job.worker.waiting += 1 if waits else -1
        if job.watch is not None:
            getattr(job.watch, state)()

    def _on_message(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready.set_result(None)
        elif kind == "error":  # its runner could not open
            worker.ready.set_exception(WorkerDied(f"lane worker {worker.index}: {message[1]}"))
        elif kind == "drained":
            worker.drained = True
        elif kind == "records":
            for job_id, made in message[1]:
                if (job := self._jobs.get(job_id)) is not None:
                    self._store(job, made)
            for job_id, state in message[2]:
                if (job := self._jobs.get(job_id)) is not None:
                    self._lane_state(job, LANE_STATES[state])
        elif (job := self._jobs.get(message[1])) is not None:
            if not job.done.done():
                if kind == "done":
                    made, unfinished, reason, earlier, overloaded = message[2]
                    outcome = ChunkOutcome(
                        _with_items(job.items, made),
                        [job.items[place] for place in unfinished],
                        reason,
                        earlier,
                        overloaded,
                    )
                    job.done.set_result(outcome)
                else:
                    job.done.set_exception(message[2])
            if job.abandoned:
                self._end(message[1])

    def _store(self, job: _Job, made: list[tuple[int, GenerationRecord]]) -> None:
        """A job's records, to its sink (stored even if its lane stopped waiting: they
        are paid for); a sink that fails (the writer) fails the job."""
        try:
            job.context.run(job.sink, _with_items(job.items, made))
        except Exception as exc:
            if not job.done.done():
                job.done.set_exception(exc)

    def _on_exit(self, worker: _Worker) -> None:
        worker.alive = False
        for host, free in self._seats.free.items():
            self._seats.free[host] = [s for s in free if self._seats.owner[s] is not worker]
        if self._closed:
            return
        exit_code = worker.process.exitcode
        said = f" (exit code {exit_code})" if exit_code is not None else ""
        died = WorkerDied(f"lane worker {worker.index} (pid {worker.process.pid}) ended{said}")
        if not worker.ready.done():
            worker.ready.set_exception(died)
        for job_id, job in list(self._jobs.items()):
            if job.worker is worker:
                if not job.done.done():
                    job.done.set_exception(died)
                if job.abandoned:
                    self._end(job_id)
        self._loop.create_task(self._notify())


def _send(worker: _Worker, message: tuple) -> None:
    """To ``worker``, whole (the loop and an interrupt's thread both send)."""
    with worker.sending:
        worker.conn.send(message)


# --- in the worker process ---------------------------------------------------------------


def _without_httpx_command_line() -> None:
    """httpx imports its command line's libraries (click, rich and pygments: ~5.5 MiB of
    a worker's memory) whenever they are installed, as Prefect installs them; a worker
    never runs that command line, so its module is marked missing (httpx then defines a
    stub ``main`` in its place)."""
    sys.modules.setdefault("httpx._main", None)


def _main(
    conn: Any, cells: Any, lock: Any, stop: Any, environment: dict[str, str], work: bytes
) -> None:
    """A worker process: runs chunks until told to exit, or until the run's process is
    gone (its pipe closed: exit at once, as if killed with it)."""
    ignore_group_signals()  # sent to the group: the run says (blocked until now)
    os.environ.update(environment)
    _without_httpx_command_line()
    open_runner, plan, seats = pickle.loads(work)  # imports the runner's modules
    fewer_collections()
    asyncio.run(_serve(conn, stop, cells, lock, open_runner, plan, seats))
    # Python's exit collects: with the heap given back to the collector (``settled_heap``)
    # that walked every object the worker holds, ~0.8 s of CPU a worker (2 loaded cores);
    # frozen, ~0.05 s. Nothing it would free outlives the process.
    gc.freeze()
    if stop.is_set():
        # The run is exiting (interrupted: ``stop_sending``), within seconds: Python's
        # own exit here (tearing down every module imported) took ~2 s of them at load ~9
        # on 2 cores (the run's exit waited 2.0-2.6 s for 2 workers whose slots were back
        # 0.25 s after the signal). What it sent and gave back is done; nothing is left.
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(0)


class _Outbox:
    """What a worker sends back. Records go without their work item (its place in the
    chunk's items: the run's process has them), those made within ``SEND_EVERY_S`` in
    one message (a message each cost the run's process a wake-up of its reader thread and
    of its loop per generation), with the lanes' slot states told meanwhile (in the
    order told); anything else is sent after what is queued, in order."""

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._loop = loop
        self._lock = threading.Lock()
        self._records: list[tuple[int, list[tuple[int, GenerationRecord]]]] = []
        self._states: list[tuple[int, int]] = []  # (job, its lane's state in LANE_STATES)

    def records(self, job_id: int, places: dict[int, int], made: Sequence) -> None:
        """From the loop: ``made``'s records, sent at the end of this turn of the loop."""
        self._due()
        self._records.append((job_id, [(places[id(r.item)], _itemless(r)) for r in made]))

    def state(self, job_id: int, state: str) -> None:
        """From the loop: the job's lane's slot state (one of ``LANE_STATES``), sent with
        the records."""
        self._due()
        self._states.append((job_id, LANE_STATES.index(state)))

    def _due(self) -> None:
        if not self._records and not self._states:
            self._loop.call_later(SEND_EVERY_S, self.flush)

    def flush(self) -> None:
        if self._records or self._states:
            batch, self._records = self._records, []
            states, self._states = self._states, []
            self._send(("records", batch, states))

    def send(self, message: tuple) -> None:
        """From the loop, after the records queued."""
        self.flush()
        self._send(message)

    def _send(self, message: tuple) -> None:
        with self._lock:
            self._conn.send(message)


class _SentWatch:
    """A job's lane's slot, told to the run's process (``LaneWatch``)."""

    def __init__(self, outbox: _Outbox, job_id: int) -> None:
        self._outbox = outbox
        self._job_id = job_id

    def waits(self) -> None:
        self._outbox.state(self._job_id, "waits")

    def holds(self) -> None:
        self._outbox.state(self._job_id, "holds")

    def holds_none(self) -> None:
        self._outbox.state(self._job_id, "holds_none")


def _itemless(record: GenerationRecord) -> GenerationRecord:
    return replace(record, item=None)  # type: ignore[arg-type]


def _drain_on_stop(stop: Any, outbox: _Outbox, loop: asyncio.AbstractEventLoop) -> None:
    """On the run's stop: send nothing new, wait for the cases in flight (their records
    are queued as they end), then send what is queued and say so."""
    stop.wait()
    stop_sending()
    wait_for_cases_in_flight(DRAIN_WAIT_S, threading.Event())
    _handed(loop, outbox.send, ("drained",))  # closed: the worker ended, nothing to send


def _handed(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> bool:
    """``callback(*args)`` handed to ``loop`` from another thread; False where the loop
    has closed. A reader thread of a worker that is ending (its loop closed, its process
    about to exit) raised RuntimeError there, and its traceback's first lines reached
    the terminal of a run stopped by SIGTERM before the process was gone (newcomer F10)."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # "Event loop is closed"
        return False
    return True


async def _serve(
    conn: Any,
    stop: Any,
    cells: Any,
    lock: Any,
    open_runner: OpenRunner,
    plan: Any,
    seats: Mapping[str, int],
) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple] = asyncio.Queue()
    outbox = _Outbox(conn, loop)

    def read() -> None:
        try:
            while True:
                message = conn.recv()
                if not _handed(loop, inbox.put_nowait, message):
                    return  # its loop is closed: the worker is ending, the message is moot
        except (EOFError, OSError, pickle.UnpicklingError):
            os._exit(1)  # the run's process is gone, and its record writer with it

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=_drain_on_stop, args=(stop, outbox, loop), daemon=True).start()
    try:
        opened = open_runner(plan, seats)
        runner = await opened.__aenter__()
    except Exception:
        outbox.send(("error", traceback.format_exc(limit=-3).strip()))
        return
    jobs: dict[int, asyncio.Task] = {}

    async def job(job_id: int, seat: int, host: HostSpec, items: list, earlier: dict) -> None:
        chunk = Chunk(items, earlier, cursor=Cursor(cells, seat, lock))
        places = {id(item): i for i, item in enumerate(items)}
        try:
            outcome = await runner(
                host,
                chunk,
                lambda made: outbox.records(job_id, places, made),
                _SentWatch(outbox, job_id),
            )
        except asyncio.CancelledError:
            outbox.send(("failed", job_id, WorkerDied("cancelled")))
            raise
        except Exception as exc:
            outbox.send(("failed", job_id, picklable(exc)))
        else:
            outbox.send(("done", job_id, _itemless_outcome(outcome, places)))
        finally:
            jobs.pop(job_id, None)

    try:
        with settled_heap():  # what it opened, out of the collector's walks (_heap)
            outbox.send(("ready",))
            while (message := await inbox.get())[0] != "exit":
                if message[0] == "chunk":
                    jobs[message[1]] = asyncio.create_task(job(*message[1:]))
                elif message[0] == "cancel" and (task := jobs.get(message[1])) is not None:
                    task.cancel()
            for task in list(jobs.values()):
                task.cancel()
            await asyncio.gather(*jobs.values(), return_exceptions=True)
    finally:
        await opened.__aexit__(None, None, None)  # its slots given back


def _itemless_outcome(outcome: ChunkOutcome, places: dict[int, int]) -> tuple:
    return (
        [(places[id(r.item)], _itemless(r)) for r in outcome.records],
        [places[id(item)] for item in outcome.unfinished],
        outcome.host_down_reason,
        outcome.earlier,
        outcome.overloaded,
    )


def _with_items(
    items: Sequence[WorkItem], made: Sequence[tuple[int, GenerationRecord]]
) -> list[GenerationRecord]:
    return [replace(record, item=items[place]) for place, record in made]
