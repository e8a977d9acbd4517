"""Cancelling a flow run from the Prefect UI, seen by the run itself (an adapter, not a
task).

The UI's Cancel button only sets the flow run's state to Cancelling through the API. A
worker or `prefect serve` runner watches for that state and kills the process it
started (``prefect._internal.observers.FlowRunCancellingObserver``, Prefect 3.8), but a
flow called in-process, as `evalflow run` does, has nobody watching: it would run on to
the end while the UI said Cancelling. So the generate stage watches its own flow run:
every ``POLL_S`` it reads the state, and on Cancelling (or Cancelled) it cancels the
generation, which aborts the requests in flight and gives their host slots back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound
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
    while True:
        done, _ = await asyncio.wait({running}, timeout=poll_s)
        if done:
            if await cancel_requested(client, flow_run_id):
                return None
            return running.result()
        if await cancel_requested(client, flow_run_id):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
            return None
