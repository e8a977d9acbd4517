"""The run's record writes in a process of their own, for a run whose lanes are in worker
processes (``evaluation.run._workers``).

There the run's process does little but store what the workers send back, and storing
was most of it: ~0.3 ms of CPU a generation (SQLAlchemy's statements for the generation,
its case run and stage rows, and SQLite's inserts), in a thread that holds the run's
GIL for its Python part. On 16 cores the run's process then capped 2, 4 and 8 workers
alike at ~1,600 generations a second (benchmarks/perf/throughput_goal.py). Here the
``RecordWriter``'s batches go, one at a time, to a process that stores them and says
when each is committed (or sends back the error), so the writer still stores one batch
at a time in one transaction, and what a kill loses is unchanged: the batch not yet
committed, which the rerun redoes.

The process ignores SIGINT and SIGTERM from its start on (``_group_signals``; a
terminal sends Ctrl-C to the whole group, a service manager SIGTERM: the run flushes its
writer before it exits) and ends when its pipe closes (the run is gone) or when
``close`` says so.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from evaluation.run._group_signals import deaf_children, ignore_group_signals
from evaluation.run._heap import fewer_collections, settled_heap
from evaluation.run._work import GenerationRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

CLOSE_WAIT_S = 30.0

_OPEN: set[WriterProcess] = set()  # this process's, until closed


def close_on_exit(timeout_s: float) -> None:
    """From an interrupt's thread, after its last flush and just before the process
    exits without unwinding (``os._exit``): every open writer process told to end, and
    killed if it is still there after ``timeout_s`` (one still importing), so none
    outlives the run (left to see its pipe close, one ran a second after the exit)."""
    for writer in list(_OPEN):
        writer.close(timeout_s)


def shareable(url: str) -> bool:
    """Whether another process opening ``url`` reaches the same database (not SQLite's
    in-memory one)."""
    return url not in ("sqlite://", "sqlite:///:memory:") and ":memory:" not in url


def stores_apart(url: str, *, workers: int) -> bool:
    """Whether a run's records are stored by a writer process: with lane workers.

    A one-process run stores from its own thread: stored apart at 64 slots x 20 ms, its
    process spent 0.07-0.08 ms a generation less in the phase, but on an idle machine
    (load 0.6-2, 2 cores) the host's rate was no higher (20,000: 0.93 and 0.87 of the
    bare wire client's against 0.90 and 0.85; 4,000: 0.84 and 0.81 against 0.90 and
    0.83) and the tree's CPU a generation higher (the process's start and the pickled
    batches: +0.02-0.04 ms at 20,000, +0.1-0.18 at 4,000;
    benchmarks/perf/results/issue46-stop79-2026-11-29.md)."""
    return shareable(url) and workers > 1


class WriterProcess:
    """Stores batches of records of ``experiment_id`` in the database at ``url`` from a
    process of its own; ``write`` (from one thread at a time: the writer's) returns once
    the batch is committed."""

    def __init__(self, url: str, experiment_id: int) -> None:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        self._process = context.Process(
            target=_main, args=(theirs, url, experiment_id), name="evalflow-writer", daemon=True
        )
        with deaf_children():
            self._process.start()
        theirs.close()
        self._conn = mine
        self._lock = threading.Lock()
        _OPEN.add(self)

    @classmethod
    @contextlib.contextmanager
    def running(cls, url: str, experiment_id: int) -> Iterator[WriterProcess]:
        writer = cls(url, experiment_id)
        try:
            yield writer
        finally:
            writer.close()

    def write(self, records: list[GenerationRecord]) -> None:
        with self._lock:
            try:
                self._conn.send(records)
                failure = self._conn.recv()
            except (EOFError, OSError) as exc:
                code = self._process.exitcode
                raise RuntimeError(f"the record writer process ended (exit code {code})") from exc
        if failure is not None:
            raise failure

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Tell the process to end (after the batch it stores), wait for it at most
        ``wait_s``, then kill it."""
        _OPEN.discard(self)
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(wait_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        self._conn.close()


def _main(conn: Any, url: str, experiment_id: int) -> None:
    ignore_group_signals()  # sent to the group: the run flushes (blocked until now)
    fewer_collections()
    # the storage modules here only: the lane workers import this module (``picklable``)
    from evaluation.storage.db import make_engine

    engine = make_engine(url, create=False)
    try:
        with settled_heap():
            _store(conn, engine, experiment_id)
    except (EOFError, OSError):
        pass  # the run is gone: what it had not sent is the rerun's
    finally:
        engine.dispose()
    # Every batch it was sent is committed and answered. Python's own exit here (tearing
    # down every module imported) outlasted an interrupted run's 0.5 s wait for it, and
    # it was killed (0.33-0.53 s, load ~10 on 2 cores): nothing is left for it to do.
    os._exit(0)


def _store(conn: Any, engine: Engine, experiment_id: int) -> None:
    """Batch after batch until ``close`` (None) or the pipe closes (EOFError)."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import save_generations

    while (records := conn.recv()) is not None:
        try:
            with session_scope(engine) as session:
                save_generations(session, experiment_id, records)
        except Exception as exc:
            conn.send(picklable(exc))
        else:
            conn.send(None)


def picklable(exc: Exception) -> Exception:
    """``exc`` if it crosses the pipe, else a RuntimeError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
