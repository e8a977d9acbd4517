"""Per-host request slots, held through Prefect global concurrency limits.

Each Ollama host has a global concurrency limit sized to its slots; a lane takes a slot
just before an HTTP attempt and gives it back when an attempt fails (never holding it
through a retry wait) or when its chunk ends. We call the lease endpoints directly
instead of ``prefect.concurrency``: that context manager serialises every acquisition
for a limit through one queue, renews the lease from a thread and releases
asynchronously, so the next request often finds the slot still taken and sleeps a
server-chosen Retry-After inside the queue. Measured on the embedded server with 4
lanes on a 4-slot limit: acquisition p50 2.1 s, p95 6.3 s; with direct lease calls,
p50 8 ms.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectAlreadyExists

from evaluation.errors import EvalError
from evaluation.spec import HostSpec

MAX_POLL_S = 1.0


class SlotUnavailable(EvalError):
    """A host's concurrency limit is missing, or no slot came free in time."""


def host_limit_name(host: HostSpec) -> str:
    """The global concurrency limit that caps requests in flight to ``host``."""
    return "ollama-host-" + re.sub(r"[^a-z0-9-]+", "-", host.name.lower()).strip("-")


async def size_limits(
    client: PrefectClient, hosts: tuple[HostSpec, ...], *, reset_active: bool
) -> dict[str, str]:
    """Create or resize each host's limit to its slots. ``reset_active`` also zeroes
    slots a crashed run left taken: only safe when no other run shares the server
    (the embedded server), where no lease expiry service runs to free them."""
    names = {}
    for host in hosts:
        name = host_limit_name(host)
        await _upsert_limit(client, name, host.slots)
        if reset_active:
            await client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(active_slots=0)
            )
        names[host.name] = name
    return names


async def _upsert_limit(client: PrefectClient, name: str, slots: int) -> None:
    """Prefect's upsert reads then creates: two runs starting together can both try to
    create the limit. The loser finds it existing on its second try and resizes it."""
    try:
        await client.upsert_global_concurrency_limit_by_name(name, slots)
    except ObjectAlreadyExists:
        await client.upsert_global_concurrency_limit_by_name(name, slots)


class HostSlots:
    """Takes and gives back slots of the hosts' limits."""

    def __init__(
        self,
        client: PrefectClient,
        limit_names: Mapping[str, str],
        *,
        lease_s: float,
        timeout_s: float,
    ) -> None:
        self._client = client
        self._names = dict(limit_names)
        self._lease_s = lease_s
        self._timeout_s = timeout_s

    def lane(self, host: str) -> LaneSlot:
        return LaneSlot(self, host)

    async def acquire(self, host: str) -> str:
        name = self._names[host]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while True:
            try:
                response = await self._client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=self._lease_s
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:
                    raise
                wait = float(exc.response.headers.get("Retry-After", MAX_POLL_S))
                wait = min(wait, MAX_POLL_S) * random.uniform(0.5, 1.0)
                if loop.time() + wait > deadline:
                    raise SlotUnavailable(
                        f"no slot of {name} came free within {self._timeout_s:.0f} s"
                    ) from exc
                await asyncio.sleep(wait)
                continue
            body = response.json()
            if not body.get("limits"):
                raise SlotUnavailable(f"concurrency limit {name} does not exist")
            return body["lease_id"]

    async def release(self, lease_id: str) -> None:
        await self._client.release_concurrency_slots_with_lease(lease_id)


class LaneSlot:
    """One lane's hold on a host slot.

    The slot is taken before an HTTP attempt and kept while the lane goes straight on to
    its next request; it is given back as soon as an attempt fails (so it is never held
    through a retry wait) and when the lane's chunk ends. Taking and giving back a slot
    around every request costs two API writes per generation, which on the embedded
    SQLite server dominated a sweep (benchmarks/perf/sweep_throughput.py).
    """

    def __init__(self, slots: HostSlots, host: str) -> None:
        self._slots = slots
        self._host = host
        self._lease: str | None = None

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        if self._lease is None:
            self._lease = await self._slots.acquire(self._host)
        try:
            yield
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await self._slots.release(lease)
