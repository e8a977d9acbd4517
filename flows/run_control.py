"""What `evalflow run` does around the flow: claim the experiment (one run at a time),
keep the embedded Prefect server tied to the command, and stop within seconds on Ctrl-C
or SIGTERM with the experiment marked interrupted and one line saying how to resume. (A
cancel from the Prefect UI is seen by the flow itself: tasks/adapters/cancellation.py.)

On a signal nothing waits for the flow to unwind: unwinding Prefect's engine, its API
workers and the task threads took over a minute and printed tracebacks. So the handler
silences output, records the interruption, stops sending (no new case, no new call),
waits a bounded time (``--interrupt-wait``, saying so; a second Ctrl-C cuts it short) for
the requests already on the wire, whose answers are then stored rather than asked again
by the rerun, closes its lane worker processes (``--workers``: each gives its host slots
back) and gives its own host slots back, then marks the Prefect flow run cancelled, stops
the server and leaves with ``os._exit`` — within ``EXIT_DEADLINE_S`` of the signal (that
wait aside) whatever the threads are doing.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from evaluation.backends import stop_sending
from evaluation.errors import StorageError
from evaluation.run._in_flight import cases_in_flight, wait_for_cases_in_flight
from evaluation.run._record_writer import flush_all
from evaluation.settings import sqlite_file
from evaluation.storage import run_notes
from evaluation.storage.db import make_engine, session_scope, storage_problem
from evaluation.storage.models import ExperimentRun
from evaluation.storage.repository import has_generations
from evaluation.storage.runs import (
    CANCELLED_REASON,
    SIGNAL_REASON,
    DeadRun,
    ExperimentBusy,
    RunProcess,
    claim_experiment,
    end_run,
    ending_of,
    failure_reason,
)
from flows import stop_signals
from flows.embedded_server import (
    CLIENT_MAX_RETRIES,
    EmbeddedServer,
    embedded_server_needed,
    use_api,
)
from tasks.adapters.embedded_api import EMBEDDED_API_ENV

EXIT_DEADLINE_S = 4.0  # from the signal to the exit, the wait for the requests in flight aside
# The steps, one after the other, each bounded, and each leaving what the steps after it
# need before that deadline: the interruption recorded (at most MARK_S), then, after the
# wait, the lane workers ended (``--workers``: each gives its host slots back first), this
# process's host slots given back (at most GIVE_BACK_S: under load one slot's write was
# seen taking 1.1 s), the flow run marked cancelled (until 1 s after the wait, or
# CANCEL_MIN_S at least), the server stopped (1 s, then killed), what the lanes finished
# stored (all the time left but what the last two keep, FLUSH_MIN_S at least), the record
# writer process ended (``--workers``), and, where nothing was stored when the signal
# came, whether the flush stored some (RECHECK_S).
MARK_S = 1.5
GIVE_BACK_S = 1.5
WORKERS_EXIT_S = 2.5  # lane workers (``--workers``) give their slots back and end, first
CANCEL_MIN_S = 0.3
WRITER_EXIT_S = 0.5  # after the last flush, the record writer process (``--workers``) ends
WRITER_STEP_S = WRITER_EXIT_S + 0.2  # then it is killed
FLUSH_MIN_S = 0.3
RECHECK_S = 0.5
WAIT_POLL_S = 1.0
INTERRUPTED_EXIT_CODE = 130
AGAIN = {
    signal.SIGINT: "Ctrl-C again to exit now",
    signal.SIGTERM: "a second SIGTERM or Ctrl-C exits now",
    signal.SIGHUP: "a second SIGHUP, SIGTERM or Ctrl-C exits now",
}


def claim(
    engine: Engine,
    name: str,
    *,
    wait: bool,
    command: str | None = None,
    task_type: str | None = None,
    level: str | None = None,
    simulated: bool | None = None,
) -> tuple[RunProcess, DeadRun | None]:
    """Claim ``name`` for this process; with ``wait``, until the run holding it ends.
    ``command``: the redacted command that resumes the run (stored for `show`);
    ``task_type``: its suite's (the monitor's task cards count it from then), and
    ``simulated`` (its SIMULATED mark from then); ``level``: its level's words
    (``level_words``: what a run in progress will generate). Also the run taken over
    if its process had died (see :func:`mark_crashed`)."""
    process = RunProcess.current()
    announced = False
    while True:
        try:
            with session_scope(engine) as session:
                dead = claim_experiment(
                    session,
                    name,
                    process,
                    command=command,
                    task_type=task_type,
                    level=level,
                    simulated=simulated,
                )
            run_notes.reserve(engine.url, name)  # where its end goes if the disk fills
            return process, dead
        except ExperimentBusy as busy:
            if not wait:
                raise
            if not announced:
                print(f"waiting: {busy.holder}", flush=True)
                announced = True
            time.sleep(WAIT_POLL_S)


@contextmanager
def launched_server() -> Iterator[EmbeddedServer | None]:
    """A server launched now, when it will probably be needed: its imports (seconds of
    CPU) overlap the command's host checks and imports; pass it to
    :func:`embedded_prefect`. Dropped on the way out if nothing started it (bad input,
    an API configured after all): it has written nothing by then. Launched after the
    spec is read, not before: a refused spec did not wait on a server importing beside
    it (a typo's refusal 9 → 4 s at load 15 on 2 cores)."""
    server = None
    if _embedded_server_likely():
        server = EmbeddedServer()
        server.launch()
    try:
        yield server
    finally:
        if server is not None and not server.started:
            server.discard()


def _embedded_server_likely() -> bool:
    """:func:`embedded_server_needed` without importing Prefect's settings (~1–2 s) when
    they are not loaded yet: an API URL in the environment is the common way to use a
    server; one set in a profile is found later, and the launch dropped."""
    if "prefect.settings" in sys.modules:
        return embedded_server_needed()
    return not os.environ.get("PREFECT_API_URL")


@contextmanager
def embedded_prefect(
    launched: EmbeddedServer | None = None,
) -> Iterator[EmbeddedServer | None]:
    """Start Prefect's API server (``launched``, else a new one) as a child that dies with
    this process, unless an API is configured. Returns at once; call ``wait_ready``
    before the first flow."""
    if not embedded_server_needed():
        if launched is not None:
            launched.discard()
        yield None
        return
    server = launched or EmbeddedServer()
    server.start()
    # Registered before Prefect's own exit hooks, so it runs after them (LIFO): the log
    # and event workers still reach the server while they drain.
    atexit.register(server.stop)
    os.environ[EMBEDDED_API_ENV] = server.api_url
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", CLIENT_MAX_RETRIES)
    # Not restored afterwards: the command ends with the server, and Prefect's exit hooks
    # must still find it (without an API URL they would start a server of their own).
    use_api(server.api_url)
    yield server


@contextmanager
def prefect_api() -> Iterator[EmbeddedServer | None]:
    """A Prefect API for a command that runs a flow of plain functions (`compare
    --publish`, `rescore`, `retrain`): the configured one (yields None), else the
    embedded server, ready. Without it Prefect would start its own ephemeral server,
    which logs to the terminal and outlives a killed command. The flow's states are
    written through evalflow's client (``engine_client``): a busy server's answer sent
    again within a tenth of a second, not Prefect's 2 s, then 4 s; a server busy for the
    whole budget (120 s) is ``TryLater`` (exit 75), as it is for `run`."""
    from tasks.adapters.prefect_client import busy_as_try_later, engine_client

    with embedded_prefect() as server:
        if server is not None:
            server.wait_ready()
        try:
            with engine_client(sync=True):
                yield server
        except Exception as exc:
            if (later := busy_as_try_later(exc)) is None:
                raise
            raise later from exc


@contextmanager
def interruptible(
    database: str,
    name: str,
    process: RunProcess,
    resume: str,
    server: EmbeddedServer | None,
    *,
    wait_s: float,
    fit: Callable[[str], str] = lambda line: line,
) -> Iterator[None]:
    """On SIGINT, SIGTERM or SIGHUP: wait up to ``wait_s`` for the requests in flight to
    be stored (saying so, each line through ``fit``: the CLI's, to the width known before
    the signal, when standard output still went to the terminal), then exit with 128 +
    the signal (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, as a shell reports a
    process they end)
    within EXIT_DEADLINE_S of the signal (the wait aside), leaving ``name`` interrupted
    and printing ``interrupted: ... resume with: <resume>`` last (or that nothing was
    stored: :func:`_last_line`). A second signal cuts the wait short.
    ``server``: the run's launched server (stopped on the way out). Entered as soon as
    the run is claimed, before Prefect's settings are imported (seconds under load, in
    which a SIGTERM killed the command without a word and left its claim "running");
    :func:`sigterm_kept_from_prefect` comes after the server's start, which its import
    of Prefect's flow engine would otherwise delay."""
    fired = threading.Event()
    hurry = threading.Event()

    def on_signal(signum: int) -> None:
        if fired.is_set():
            hurry.set()
            return
        fired.set()
        message_fd = _silence_output()
        threading.Thread(
            target=_stop,
            args=(database, name, process, resume, server, message_fd, wait_s, hurry, signum),
            kwargs={"fit": fit},
            name="evalflow-interrupt",
            daemon=True,
        ).start()

    # Python runs a signal handler in the main thread, and only once that thread runs
    # Python code again: an event loop idle in epoll_wait (awaiting a worker thread)
    # would never see it. The C-level handler also writes each signal to a wakeup fd; a
    # thread blocked on that fd reacts at once whatever the main thread is doing, and
    # counts the signals (the Python handler may run once for several).
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    # SIGHUP too (the terminal closed, the ssh dropped: it ended the run at once with 129,
    # its requests in flight lost and no word, newcomers' S4). An ignored SIGTERM or
    # SIGHUP stays ignored (``nohup``); the CLI took an ignored SIGINT (app.main).
    previous = stop_signals.take(_ignore, stop_signals.STOP_SIGNALS)
    taken = list(previous)

    def watch() -> None:
        while signals := os.read(wake_read, 16):  # b"" once the context closes the pipe
            for signum in signals:
                if signum in taken:
                    on_signal(signum)
        os.close(wake_read)

    threading.Thread(target=watch, name="evalflow-signal-watch", daemon=True).start()
    try:
        yield
    finally:
        if fired.is_set():  # the flow ended first: the interrupt's thread exits the process
            time.sleep(wait_s + EXIT_DEADLINE_S + 1)
        stop_signals.restore(previous)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wake_write)  # ends the watcher's read


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: the wakeup fd's watcher does the work (see above)."""


@contextmanager
def sigterm_kept_from_prefect() -> Iterator[None]:
    """While the block runs, SIGTERM stays with the handler the flow found: `run`'s
    :func:`interruptible`, as SIGINT does; `retrain`'s and `rescore`'s Ctrl-C
    (``flows.cli._signals.stop_signals_as_interrupt``: Prefect's handler crashed their flows
    with its "Crash detected!" lines and no word of evalflow's, newcomer F7).

    Prefect's flow engine (3.8, ``prefect.utilities.engine.capture_sigterm``) installs
    its own SIGTERM handler for the flow's duration; it raises ``TerminationSignal`` in
    the main thread, and the engine then cancels every task: the requests in flight were
    dropped and asked again by the rerun, although the wait for them was announced. Its
    only other use is to acknowledge a cancel from a Prefect runner (a deployment's
    worker), and `evalflow run` calls the flow directly, under no runner. So the
    engine's scope is entered as before and the handler put back to ours inside it
    (Prefect restores ours on the way out, as the one it found)."""
    from prefect import flow_engine

    original = flow_engine.capture_sigterm

    @contextmanager
    def capture_sigterm() -> Iterator[None]:
        ours = signal.getsignal(signal.SIGTERM)
        with original():
            if threading.current_thread() is threading.main_thread() and ours is not None:
                signal.signal(signal.SIGTERM, ours)
            yield

    flow_engine.capture_sigterm = capture_sigterm
    try:
        yield
    finally:
        flow_engine.capture_sigterm = original


#: While a terminal display is drawn: what ends its line (the interrupt's first message
#: would otherwise go on the end of the display's last line). Called from the interrupt's
#: thread, so it must only read state, never draw.
LINE_ENDERS: list[Callable[[], bytes]] = []


def _end_display_line() -> bytes:
    return b"".join(end() for end in list(LINE_ENDERS))


def _silence_output() -> int:
    """Stop every log record and point stdout/stderr at /dev/null; returns a copy of the
    original stderr for the last line."""
    logging.disable(logging.CRITICAL)
    for stream in (sys.stdout, sys.stderr):
        # What was printed before the signal stays printed (unless interrupted mid-write).
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            stream.flush()
    message_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return message_fd


def _stop(
    database: str,
    name: str,
    process: RunProcess,
    resume: str,
    server: EmbeddedServer | None,
    message_fd: int,
    wait_s: float,
    hurry: threading.Event,
    signum: int,
    fit: Callable[[str], str] = lambda line: line,
) -> None:
    def say(line: str) -> None:
        with contextlib.suppress(OSError):  # a terminal that hung up (SIGHUP): EIO
            os.write(message_fd, f"{fit(line.rstrip())}\n".encode())

    stop_sending()  # nothing new is asked of a host; what is in flight is stored below
    if ending := _end_display_line():  # the messages below start on a line of their own
        with contextlib.suppress(OSError):
            os.write(message_fd, ending)
    started = time.monotonic()
    marked = _bounded(lambda: _mark_interrupted(database, name, process), started + MARK_S)
    # Not known (the mark took longer than MARK_S on a loaded machine): read again below,
    # after the flush. It said "resume with" for a run stopped while Prefect started,
    # whose experiment `status` did not know (newcomers' M8).
    flow_run_id, stored = marked or (None, False)
    # The cases whose requests are on the wire: their answers are stored, not redone.
    wait_began = time.monotonic()
    left = in_flight = cases_in_flight()
    if in_flight and wait_s > 0 and not hurry.is_set():
        say(
            f"interrupted: waiting up to {wait_s:g} s for the {in_flight} request(s) in "
            f"flight to finish and be stored ({AGAIN[signum]})"
        )
        left = wait_for_cases_in_flight(wait_s, hurry)
    if left:  # evalflow stops waiting; a server may not stop computing (newcomer N7)
        say(
            f"interrupted: {left} request(s) left unanswered (the rerun asks them again); "
            "the model server may go on computing them (llama-cpp-python's does): wait "
            "for it, or restart it, before the next run or judge"
        )
    waited = time.monotonic()
    deadline = started + EXIT_DEADLINE_S + (waited - wait_began)  # the wait not counted
    last = RECHECK_S if not stored else 0.0  # what the steps after each one keep
    last_but_flush = WRITER_STEP_S + last

    def until(cap: float, keep: float = FLUSH_MIN_S + last_but_flush) -> float:
        return min(cap, deadline - keep)

    # This process's host slots are given back (else the next run finds them held by a
    # dead run), then the flow run is marked cancelled, both before the embedded server
    # stops. One after the other: side by side their writes met in the server's SQLite,
    # one was answered 503 and tried again later, and the give-back ran past the second
    # they shared (the rerun then gave back slots "held by dead run(s)"). The lane
    # workers' slots first: the exit would cut them off with theirs listed.
    _bounded(_close_lane_workers, until(waited + WORKERS_EXIT_S + 0.5))
    _bounded(_give_back_slots, until(time.monotonic() + GIVE_BACK_S))
    if flow_run_id:
        cancel_by = max(waited + 1.0, time.monotonic() + CANCEL_MIN_S)
        _bounded(lambda: _cancel_flow_run(flow_run_id), until(cancel_by))
    if server is not None:  # then killed
        server.stop(timeout_s=max(0.0, min(1.0, until(math.inf) - time.monotonic())))
    # What the lanes finished is stored: all the time left but the last steps' (at least
    # FLUSH_MIN_S, which every step above leaves).
    flush_all(timeout_s=max(FLUSH_MIN_S, deadline - last_but_flush - time.monotonic()))
    _bounded(_close_writer_processes, until(time.monotonic() + WRITER_STEP_S, keep=last))
    if not stored:  # read again: the wait and the flush may have stored the first ones
        found = _bounded(lambda: has_stored(database, name), until(math.inf, keep=0.0))
        stored = found is not False  # not known: the command resumes, if anything
    say(interrupted_line(name, resume, stored=stored))
    os._exit(128 + signum)


def interrupted_line(name: str, resume: str, *, stored: bool) -> str:
    """The interrupt's last line: how to resume, or, where the experiment has nothing
    stored (stopped while Prefect or the lane workers started), that nothing was, and
    that the same command starts it over (as `show` then says, if it knows the
    experiment yet)."""
    if stored:
        return f"interrupted: {name!r} stopped; resume with: {resume}\n"
    return (
        f"interrupted: {name!r} stopped before anything was stored; start it over with: {resume}\n"
    )


def before_the_claim(database: str, name: str | None, resume: str) -> str:
    """The last line of a run interrupted before it claimed its experiment (reading the
    spec, checking the hosts): nothing of this run was stored; where earlier runs stored
    some (or that cannot be read at once), the command resumes them."""
    if name is None:  # the spec not read yet
        return f"interrupted: stopped before anything was stored; start it over with: {resume}\n"

    def stored_before() -> bool:
        if (path := sqlite_file(database)) is not None and not path.exists():
            return False  # no database yet (and none made by asking)
        try:
            return has_stored(database, name)
        except StorageError:  # none of evalflow's tables yet
            return False

    found = _bounded(stored_before, time.monotonic() + RECHECK_S)
    return interrupted_line(name, resume, stored=found is not False)


def _bounded(work, deadline: float):
    """Run ``work`` in a thread; its result, or None if it fails or passes ``deadline``."""
    result: list = []

    def target() -> None:
        with contextlib.suppress(Exception):  # best effort: the exit must come first
            result.append(work())

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    return result[0] if result else None


def _close_lane_workers() -> None:
    """This run's lane worker processes told to exit, each giving its host slots back
    (``evaluation.run._workers.close_on_exit``); none without ``--workers``."""
    from evaluation.run._workers import close_on_exit

    close_on_exit(WORKERS_EXIT_S)


def _close_writer_processes() -> None:
    """The record writer process (``--workers``) ended after the last flush, not left
    to outlive the run (``evaluation.run._writer_process.close_on_exit``)."""
    from evaluation.run._writer_process import close_on_exit

    close_on_exit(WRITER_EXIT_S)


def _give_back_slots() -> None:
    """The host slots this process holds, given back (best effort: the exit comes first)."""
    from tasks.adapters.slots_at_exit import give_back_on_exit

    give_back_on_exit()


def _mark_interrupted(database: str, name: str, process: RunProcess) -> tuple[str | None, bool]:
    """Record the interruption; the flow run id this process recorded, if any, and
    whether the experiment has generations stored (what a rerun resumes)."""
    engine = make_engine(database, create=False)
    try:
        with session_scope(engine) as session:
            run = session.get(ExperimentRun, name)
            flow_run_id = run.flow_run_id if run is not None else None
            end_run(session, name, "interrupted", process, reason=SIGNAL_REASON)
            stored = has_generations(session, name)
        return flow_run_id, stored
    finally:
        engine.dispose()


def has_stored(database: str, name: str) -> bool:
    """Whether the experiment ``name`` has generations stored: what its command would
    resume (raises what the database raises)."""
    engine = make_engine(database, create=False)
    try:
        with session_scope(engine) as session:
            return has_generations(session, name)
    finally:
        engine.dispose()


def _cancel_flow_run(flow_run_id: str) -> None:
    """Tell the Prefect API the flow run was cancelled (it would say Running forever)."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return
    httpx.post(
        f"{url}/flow_runs/{flow_run_id}/set_state",
        json={"state": {"type": "CANCELLED", "name": "Interrupted"}, "force": True},
        timeout=1.0,
    )


def record_failure(
    database: str, name: str, process: RunProcess, exc: Exception, known: Sequence[str] = ()
) -> str:
    """End this process's run of ``name`` as failed (interrupted where the results
    database stayed locked: ``ending_of``), or as cancelled when its flow run was
    cancelled from Prefect (unless the flow already recorded how it ended); the
    reason stored (the credentials of the ``known`` URLs masked in it)."""
    from prefect.exceptions import CancelledRun

    cancelled = isinstance(exc, CancelledRun)
    reason = CANCELLED_REASON if cancelled else failure_reason(exc, known)
    status = "cancelled" if cancelled else ending_of(exc)
    engine = make_engine(database, create=False)
    try:
        with session_scope(engine) as session:
            end_run(session, name, status, process, reason=reason)
    except (SQLAlchemyError, StorageError) as unrecorded:  # its disk full: kept beside it
        said = storage_problem(unrecorded.__cause__ or unrecorded)
        reason += f" (not stored in the database: {said})"
        if not _keep_beside(engine, name, process, status, reason):
            reason += "; nowhere else to keep it"
    finally:
        engine.dispose()
    return reason


def _keep_beside(engine: Engine, name: str, process: RunProcess, status: str, reason: str) -> bool:
    """How this process's run ended, in its note beside the database (``run_notes``)."""
    try:
        with session_scope(engine) as session:  # reading needs no room
            run = session.get(ExperimentRun, name)
            token = run.token if run is not None and process.owns(run) else None
    except (SQLAlchemyError, StorageError):
        return False
    return token is not None and run_notes.write(engine.url, name, token, status, reason)


def was_cancelled(exc: Exception) -> bool:
    """Whether the flow ended because its flow run was cancelled from Prefect."""
    from prefect.exceptions import CancelledRun

    return isinstance(exc, CancelledRun)
