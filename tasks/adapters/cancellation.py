"""Cancelling a flow run from the Prefect UI, seen by the run itself (an adapter, not a
task).

The UI's Cancel button only sets the flow run's state to Cancelling through the API. A
worker or `prefect serve` runner watches for that state and kills the process it
started (``prefect._internal.observers.FlowRunCancellingObserver``, Prefect 3.8), but a
flow called in-process, as `evalflow run` does, has nobody watching: it would run on to
the end while the UI said Cancelling. So the generate stage watches its own flow run:
every ``POLL_S`` it reads the state, and on Cancelling (or Cancelled) it cancels the
generation, which aborts the requests in flight and gives their host slots back. A
runner's cancel, which also sends the process SIGTERM, ends the same way, whether its
SIGTERM comes while the generation runs or once the watch has seen the cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Iterator
from types import FrameType
from typing import TypeVar
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound, TerminationSignal
from prefect.logging import get_logger

POLL_S = 1.0

T = TypeVar("T")
logger = get_logger("evalflow.cancellation")


async def cancel_requested(client: PrefectClient, flow_run_id: UUID) -> bool:
    """Whether someone asked the API to cancel the flow run (a read that fails says no:
    the next poll asks again)."""
    try:
        run = await client.read_flow_run(flow_run_id)
    except (httpx.HTTPError, ObjectNotFound) as exc:
        logger.debug("could not read flow run %s: %s", flow_run_id, exc)
        return False
    state = run.state
    return state is not None and (state.is_cancelling() or state.is_cancelled())


async def unless_cancelled(
    work: Awaitable[T],
    client: PrefectClient,
    flow_run_id: UUID | None,
    *,
    poll_s: float = POLL_S,
) -> T | None:
    """``work``'s result, or None when the flow run was cancelled first: ``work`` is then
    cancelled and awaited, so what it holds (host slots) is given back before this
    returns. A cancel seen as ``work`` ends (within the last poll) counts too, and so
    does ``work`` failing while one is pending (the server refuses new task runs of a
    flow run that is not Running): the run stops before its next stage either way."""
    if flow_run_id is None:  # not in a flow run: nothing to watch
        return await work
    running = asyncio.ensure_future(work)
    stop = asyncio.Event()  # set by a runner's SIGTERM (``_runner_cancel_sets``)
    terminated = asyncio.Event()  # ... and this too where it was not a cancel
    seen = asyncio.Event()  # the cancel, however it was seen: the run ends Cancelled
    stopping = asyncio.ensure_future(stop.wait())
    try:
        with _runner_cancel_sets(stop, terminated, seen, client, flow_run_id):
            while True:
                done, _ = await asyncio.wait(
                    {running, stopping}, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED
                )
                cancelled = (stop.is_set() and not terminated.is_set()) or await cancel_requested(
                    client, flow_run_id
                )
                if cancelled:
                    seen.set()
                if running in done and not terminated.is_set():
                    return None if cancelled else running.result()
                if cancelled or terminated.is_set():
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await running
                    if terminated.is_set() and not cancelled:  # Prefect's way: a crash
                        raise TerminationSignal(signal=signal.SIGTERM)
                    return None
    finally:
        stopping.cancel()


@contextlib.contextmanager
def _runner_cancel_sets(
    stop: asyncio.Event,
    terminated: asyncio.Event,
    seen: asyncio.Event,
    client: PrefectClient,
    flow_run_id: UUID,
) -> Iterator[None]:
    """A runner's cancel (``evalflow serve``, a worker) sends the flow's process SIGTERM
    once the flow run is Cancelling; Prefect's handler raised TerminationSignal wherever
    the generation stood, and ``serve``'s terminal showed ERROR lines (with a model
    server's requests in flight, three chained tracebacks) for an ordinary cancel. Here
    a SIGTERM while the flow run is Cancelling (Prefect's control channel says so, or
    the API) sets ``stop`` instead, so the cancel ends as one seen by the watch does:
    one line, the flow run Cancelled. Any other SIGTERM sets ``terminated`` too, and the
    watch raises Prefect's TerminationSignal in the flow (a crash, as before).

    Once the watch has seen the cancel (``seen``: on the flow run's state, polled, before
    the runner's SIGTERM came), that SIGTERM is still on its way: Prefect's handler, put
    back here, raised TerminationSignal while the cancelled run ended (its generations
    flushed, its experiment marked), and the flow run Crashed, the experiment
    `interrupted`, with no `NAME cancelled: ...` line (newcomers' ncwatch-1, under
    `evalflow serve` at load 20-25). So from then on a SIGTERM is taken as that cancel:
    ignored, until Prefect's flow engine puts the process's own handler back as the flow
    run ends (``prefect.utilities.engine.capture_sigterm``)."""
    from prefect._internal import control_listener  # Prefect 3.8: the runner's intent
    from prefect.utilities.engine import _prefect_sigterm_handler

    # Only the main thread may set signal handlers, and only Prefect's handler is taken
    # over: `evalflow run` keeps SIGTERM for its own interrupt (flows/run_control.py).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    if previous is not _prefect_sigterm_handler:
        yield
        return
    loop = asyncio.get_running_loop()
    deciding: set[asyncio.Task] = set()

    async def decide() -> None:
        if not await cancel_requested(client, flow_run_id):
            terminated.set()
        stop.set()

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        if control_listener.get_intent() == "cancel":
            loop.call_soon_threadsafe(stop.set)
            return
        # The runner's control channel is not always connected: ask the API (the
        # runner waits 30 s for the process to end before SIGKILL).
        loop.call_soon_threadsafe(lambda: deciding.add(loop.create_task(decide())))

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        for task in deciding:
            task.cancel()
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, _cancel_under_way if seen.is_set() else previous)


def _cancel_under_way(_signum: int, _frame: FrameType | None) -> None:
    """A runner's SIGTERM for a cancel the run has seen and is ending as: nothing to do."""
