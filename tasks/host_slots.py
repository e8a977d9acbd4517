"""Per-host request slots, held through Prefect global concurrency limits.

Each Ollama host has a global concurrency limit sized to its slots; a lane takes a slot
just before an HTTP attempt and gives it back when an attempt fails (never holding it
through a retry wait); when its chunk ends the slot goes to the lane's next chunk, or
back to the limit if no chunk takes it within a second. Leases are renewed while a
long chunk holds them. We call the lease endpoints directly
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
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectAlreadyExists

from evaluation.errors import EvalError
from evaluation.spec import HostSpec

MAX_POLL_S = 1.0
BUSY_TRIES = 40  # quick retries of a slot write the server answered 503 (busy)


class SlotUnavailable(EvalError):
    """A host's concurrency limit is missing, or no slot came free in time."""


class _SlotsFull(Exception):
    """The limit has no free slot now (the server's 423)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"no free slot; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


class _ServerBusy(Exception):
    """The Prefect server answered 503: its database was busy; nothing was written."""


async def _fail_fast_when_busy(response: httpx.Response) -> None:
    if response.status_code == 503:
        raise _ServerBusy(f"{response.request.method} {response.request.url.path}: 503")


def slot_client() -> PrefectClient:
    """A Prefect client for slot writes that hands a 503 back at once.

    On SQLite the server answers 503 when a write collides with another one, and
    Prefect's client then waits 2 s before trying again: measured at 800 generations,
    that wait hit the first request of a lane in half the runs (~5% of the sweep's wall
    time). This client raises instead (an httpx response hook, so nothing private is
    touched) and ``HostSlots`` tries again within a tenth of a second."""
    return get_client(httpx_settings={"event_hooks": {"response": [_fail_fast_when_busy]}})


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


@dataclass
class _Lease:
    id: str
    renewed_at: float


class HostSlots:
    """Takes, hands over and gives back slots of the hosts' limits.

    Every slot change is a write to the Prefect server's database. On the embedded
    SQLite server, writes that collide come back as 503 and Prefect's client retries
    them after about 2 s: measured at 800 generations, each chunk's first acquisition
    took 1.7-2.4 s (lanes starting together, or a chunk starting while another ended),
    15% of the sweep's wall time. So this process writes one slot change at a time,
    and a lane whose chunk ends parks its lease for ``handoff_s`` instead of releasing
    it: the lane's next chunk, which starts within milliseconds, takes it over with no
    API call. A parked lease nobody takes is released, so an idle lane does not keep
    a slot from other runs.
    """

    def __init__(
        self,
        client: PrefectClient,
        limit_names: Mapping[str, str],
        *,
        lease_s: float,
        timeout_s: float,
        handoff_s: float = 1.0,
    ) -> None:
        self._client = client
        self._names = dict(limit_names)
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._handoff_s = handoff_s
        self._writes = asyncio.Lock()
        self._parked: dict[str, list[_Lease]] = defaultdict(list)
        self._expiries: dict[str, asyncio.Task] = {}  # parked lease id -> its timer
        self._background: set[asyncio.Task] = set()

    def lane(self, host: str) -> LaneSlot:
        return LaneSlot(self, host)

    async def take(self, host: str) -> _Lease:
        """A parked lease of ``host`` if one is waiting, else a new one."""
        if self._parked[host]:
            lease = self._parked[host].pop()
            self._expiries.pop(lease.id).cancel()
            return await self.renew_if_due(host, lease)
        return await self._acquire(host)

    def park(self, host: str, lease: _Lease) -> None:
        """Keep ``lease`` for the host's next chunk; release it if none comes in time."""
        self._parked[host].append(lease)
        expiry = asyncio.create_task(self._release_unclaimed(host, lease))
        self._expiries[lease.id] = expiry
        self._background.add(expiry)
        expiry.add_done_callback(self._background.discard)

    async def reserve(self, hosts: tuple[HostSpec, ...]) -> None:
        """Take the lanes' first slots before their chunk tasks start, and park them.

        Chunk tasks starting together make the server persist their events while the
        lanes ask for slots; that collision cost the first request of every lane ~2 s.
        Only slots free right now are taken: a host shared with other runs is not
        waited for here (its lanes wait for their own slots)."""
        for host in hosts:
            for _ in range(host.slots):
                try:
                    self.park(host.name, await self._increment(host.name))
                except _SlotsFull:
                    break

    async def release(self, lease: _Lease) -> None:
        await self._write(lambda: self._client.release_concurrency_slots_with_lease(lease.id))

    async def renew_if_due(self, host: str, lease: _Lease) -> _Lease:
        """Renew a lease past half its life: a chunk can outlast the lease, and the
        server frees a slot whose lease expired (the lane would then overcommit)."""
        loop = asyncio.get_running_loop()
        if loop.time() - lease.renewed_at < self._lease_s / 2:
            return lease
        try:
            await self._write(lambda: self._client.renew_concurrency_lease(lease.id, self._lease_s))
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code not in (404, 410):
                raise
            return await self._acquire(host)  # expired meanwhile: its slot is free again
        return _Lease(lease.id, loop.time())

    async def close(self) -> None:
        """Release every parked lease now (the run's generation is over)."""
        for expiry in self._expiries.values():
            expiry.cancel()
        self._expiries.clear()
        await asyncio.gather(*self._background, return_exceptions=True)
        for leases in self._parked.values():
            while leases:
                await self.release(leases.pop())

    async def _release_unclaimed(self, host: str, lease: _Lease) -> None:
        await asyncio.sleep(self._handoff_s)
        self._parked[host].remove(lease)
        del self._expiries[lease.id]
        await self.release(lease)  # not cancelled by close(), which waits for it

    async def _acquire(self, host: str) -> _Lease:
        """Wait for a slot of ``host`` (polling while the limit is full)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while True:
            try:
                return await self._increment(host)
            except _SlotsFull as full:
                wait = min(full.retry_after_s, MAX_POLL_S) * random.uniform(0.5, 1.0)
                if loop.time() + wait > deadline:
                    raise SlotUnavailable(
                        f"no slot of {self._names[host]} came free within {self._timeout_s:.0f} s"
                    ) from full
                await asyncio.sleep(wait)

    async def _increment(self, host: str) -> _Lease:
        """Take one slot now; ``_SlotsFull`` when the limit has none free."""
        name = self._names[host]
        try:
            response = await self._write(
                lambda: self._client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=self._lease_s
                )
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            raise _SlotsFull(float(exc.response.headers.get("Retry-After", MAX_POLL_S))) from exc
        body = response.json()
        if not body.get("limits"):
            raise SlotUnavailable(f"concurrency limit {name} does not exist")
        return _Lease(body["lease_id"], asyncio.get_running_loop().time())

    async def _write(self, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """One slot write at a time from this run (they would collide with each other),
        tried again shortly when the server was busy (see ``slot_client``)."""
        for _ in range(BUSY_TRIES):
            try:
                async with self._writes:
                    return await call()
            except _ServerBusy as exc:
                busy = exc
                await asyncio.sleep(random.uniform(0.02, 0.1))
        raise SlotUnavailable(
            f"the Prefect API stayed busy through {BUSY_TRIES} tries: {busy}"
        ) from busy


class LaneSlot:
    """One lane's hold on a host slot for one chunk.

    The slot is taken before an HTTP attempt and kept while the lane goes straight on to
    its next request; it is given back as soon as an attempt fails (so it is never held
    through a retry wait). When the chunk ends it is parked for the lane's next chunk.
    Taking and giving back a slot around every request costs two API writes per
    generation, which on the embedded SQLite server dominated a sweep
    (benchmarks/perf/sweep_throughput.py).
    """

    def __init__(self, slots: HostSlots, host: str) -> None:
        self._slots = slots
        self._host = host
        self._lease: _Lease | None = None

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        if self._lease is None:
            self._lease = await self._slots.take(self._host)
        else:
            self._lease = await self._slots.renew_if_due(self._host, self._lease)
        try:
            yield
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        """Give the slot back now (an attempt failed)."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await self._slots.release(lease)

    def finish(self) -> None:
        """The chunk is over: park the slot for the lane's next chunk."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            self._slots.park(self._host, lease)
