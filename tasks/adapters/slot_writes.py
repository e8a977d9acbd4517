"""A run's slot writes (``SlotWrites``): one at a time (a busy server's answers sent
again by the client: ``prefect_client``), and finished even when their caller stops
waiting for them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from tasks.adapters.prefect_client import PrefectBusy, busy_as_try_later
from tasks.adapters.slot_errors import SlotWritesBusy

T = TypeVar("T")


class SlotWrites:
    """The slot writes of one ``HostSlots``: each is a write to the Prefect server's
    database, and a run's writes would collide with each other."""

    def __init__(self) -> None:
        self._writes = asyncio.Lock()
        self._in_flight: set[asyncio.Task] = set()  # slot writes, finished even if cancelled

    async def write(self, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """One slot write at a time from this run (they would collide with each other).
        A busy server's answer is sent again soon by the client's transport
        (``prefect_client.BusyRetry``), the write keeping its turn; a server busy for the
        whole budget is ``SlotWritesBusy`` (the run stops for later)."""
        try:
            async with self._writes:
                return await call()
        except PrefectBusy as exc:
            raise SlotWritesBusy(str(busy_as_try_later(exc))) from exc

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
