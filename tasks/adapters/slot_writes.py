"""A run's slot writes (``SlotWrites``): one at a time, tried again while the Prefect
server is busy, and finished even when their caller stops waiting for them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from tasks.adapters.slot_errors import SlotUnavailable, _ServerBusy

# A slot write the server answered 503 (its database busy) is tried again at once, then
# less often; it fails only once the server has been busy this long. Prefect's SQLite
# waits up to 60 s for a lock (its busy_timeout), and under four concurrent runs a
# server was measured answering nothing for ~60 s: a shorter budget failed generations.
BUSY_BUDGET_S = 120.0
BUSY_WAIT_CAP_S = 1.0

T = TypeVar("T")


class SlotWrites:
    """The slot writes of one ``HostSlots``: each is a write to the Prefect server's
    database, and a run's writes would collide with each other."""

    def __init__(self) -> None:
        self._writes = asyncio.Lock()
        self._in_flight: set[asyncio.Task] = set()  # slot writes, finished even if cancelled

    async def write(self, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """One slot write at a time from this run (they would collide with each other),
        tried again at once when the server was busy (see ``slot_client``), then less
        often, for up to ``BUSY_BUDGET_S``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_BUDGET_S
        wait = 0.05
        while True:
            try:
                async with self._writes:
                    return await call()
            except _ServerBusy as exc:
                if loop.time() + wait > deadline:
                    raise SlotUnavailable(
                        f"the Prefect API stayed busy for {BUSY_BUDGET_S:g} s: {exc}"
                    ) from exc
                await asyncio.sleep(wait * random.uniform(0.4, 1.0))
                wait = min(wait * 1.5, BUSY_WAIT_CAP_S)

    def finish_even_if_cancelled(self, write: Awaitable[T]) -> asyncio.Task[T]:
        """``write`` as a task ``settle`` waits for, whoever stops waiting for it."""
        task = asyncio.ensure_future(write)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def settle(self) -> None:
        """Wait until the writes under way have ended (``finish_even_if_cancelled``)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
