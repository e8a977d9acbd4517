"""Per-host request slots, held through Prefect global concurrency limits: a client for
Prefect's concurrency API (an adapter, not a task).

Each Ollama host has a global concurrency limit sized to its slots; a lane takes a slot
just before an HTTP attempt and gives it back when an attempt fails (never holding it
through a retry wait); when its chunk ends the slot goes to the lane's next chunk (or
first to a pipeline call of the run waiting for a spare slot, ``on_parked``), or back to
the limit if no chunk takes it within a second. A lane that waits while the run holds
every slot of its host (``capacity``) waits for one of them to come back, without asking
the limit. We call the lease endpoints
directly instead of ``prefect.concurrency``: that context manager serialises every
acquisition for a limit through one queue, renews the lease from a thread and releases
asynchronously, so the next request often finds the slot still taken and sleeps a
server-chosen Retry-After inside the queue. Measured on the embedded server with 4
lanes on a 4-slot limit: acquisition p50 2.1 s, p95 6.3 s; with direct lease calls,
p50 8 ms.

Leases are short (60 s, Prefect's least) and renewed every 15 s while the run lives, so
a run that dies on another machine frees its slots within ~75 s (lease expiry and the
server's expiry loop). A run that dies on this machine is found at once through its
holder file (tasks/adapters/slot_holders.py), and its slots are given back by the next run that
starts or finds the limit full. On a command's embedded server, which dies with its
run, slots are counted without a lease (``Registry.by_count``): taken and given back by
count, nothing to renew.

The lanes' first slots are taken in one write (``reserve``: N slots of a limit at once,
one lease of N on a shared server, a count of N on the embedded one; it was one write
per slot, 64 in a row before a 64-slot host's first request, ~3 s under load). Such a
grant's slots are handed to lanes one by one like any other. On the embedded server each
goes back by count as it stops being used (those given back while an earlier give-back of
their limit waits for its turn go in that write: ``_give_back_counted``); a lease of
several goes back whole, once the run uses none of its slots: until then those it
stopped using stay parked for its lanes and spare calls (on a shared server another run
waits for them until then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx

from evaluation.backends._sending import (
    on_stop_sending,
    park,
    sending_stopped,
    waiting_for_slot,
)
from evaluation.run._slot_waits import TURN_S
from evaluation.spec import HostSpec
from tasks.adapters.dead_run_slots import give_back_dead
from tasks.adapters.host_limits import _warn_of_namesakes
from tasks.adapters.lane_slot import LaneSlot
from tasks.adapters.slot_errors import SlotUnavailable, _SlotsFull
from tasks.adapters.slot_holders import (
    FolderLock,
    Held,
    HolderFile,
    holders_of,
    scan,
    used_by_others,
)
from tasks.adapters.slot_leases import _give_back_call, _Grant, _Lease, _Takes, _Unsent
from tasks.adapters.slot_registry import Registry, registry_for
from tasks.adapters.slot_turns import SlotTurns
from tasks.adapters.slot_writes import SlotWrites
from tasks.adapters.slots_at_exit import _OPEN_RECORDS

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

    from evaluation.run._slot_waits import LaneWatch
    from tasks.adapters.slot_api import SlotApi

MAX_POLL_S = 1.0
LEASE_S = 60.0  # the shortest lease Prefect grants
RENEW_EVERY_S = 15.0  # for a LEASE_S lease; a longer one at the same quarter of its length
RECLAIM_EVERY_S = 2.0  # while a limit is full: how often to look for dead holders
HANDOFF_S = 1.0  # a parked slot nobody takes within this goes back to the limit
RESERVE_HOLD_S = 30.0  # slots taken before the lanes start are kept for them this long
TAKE_SAID_AFTER_S = MAX_POLL_S  # a lane's own take unanswered this long: its wait's cause
TURN_GRACE_S = 2.0  # after a slot handed over to a waiting run: the limit is left to it
TURN_LOOK_S = 0.05  # while another run's hand-over is awaited: how often to look for one
TURN_LOOK_EVERY_S = 0.25  # a run's lanes look for other runs waiting at most this often

logger = logging.getLogger("prefect.evalflow.host_slots")  # Prefect's get_logger's name


def _loop_time() -> float:
    """The event loop's clock (``time.monotonic`` unless a test moves it)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


async def _no_answer() -> None:
    """The write of a take every lane of which stopped waiting before its turn."""


class _NoActiveSlots:
    """The update that zeroes a limit's count, as ``GlobalConcurrencyLimitUpdate(
    active_slots=0)`` dumps itself (both clients send ``model_dump``'s JSON): a lane
    worker imports no Prefect (``slot_api``)."""

    def model_dump(self, **_: Any) -> dict[str, int]:
        return {"active_slots": 0}


class HostSlots:
    """Takes, hands over and gives back slots of the hosts' limits.

    Every slot change is a write to the Prefect server's database. On the embedded
    SQLite server, writes that collide come back as 503 and Prefect's client retries
    them after about 2 s: measured at 800 generations, each chunk's first acquisition
    took 1.7-2.4 s (lanes starting together, or a chunk starting while another ended),
    15% of the sweep's wall time. So this process writes one slot change at a time
    (``SlotWrites``), and a lane whose chunk ends parks its lease for ``handoff_s``
    instead of releasing it: the lane's next chunk, which starts within milliseconds,
    takes it over with no API call. A parked lease nobody takes is released, so an idle
    lane does not keep a slot from other runs.

    ``handoff_s=None`` (a lane worker process, ``tasks.lane_workers``): parked slots, up
    to the process's ``capacity``, are kept until ``close``. A worker's chunks come from
    the run's process, which under load sent the next one to a worker's free seat
    0.4 s after a chunk there ended (median; a fifth over a second: 256 slots x 500 ms,
    10-item chunks, ~50 chunk ends a second as at 256 x 50 ms on 16 cores, 2 loaded
    cores, benchmarks/perf/throughput_goal.py): with a second's handoff those slots went
    back to the limit and were taken again, two writes each, one at a time per process
    at ~0.1-0.2 s a write on the busy server; a lane queued behind those writes waited
    13 s on average and the host fell to 67 of 256 open (1,518 slot writes in a run;
    kept: 10). Its seats are its share of the slots, so what it keeps is what the
    run's lanes use; the run gives them back as its generation ends (``close``).
    """

    def __init__(
        self,
        client: PrefectClient | SlotApi,
        limit_names: Mapping[str, str],
        *,
        timeout_s: float,
        lease_s: float = LEASE_S,
        handoff_s: float | None = HANDOFF_S,
        registry: Registry | None = None,
        holder: UUID | None = None,
        capacity: Mapping[str, int] | None = None,
        label: str = "",
    ) -> None:
        self._client = client
        self._label = label  # the run, in words, in its holder file (``holders_of``)
        self._names = dict(limit_names)
        self._capacity = dict(capacity or {})  # host -> its slots (its limit's size)
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._handoff_s = handoff_s
        self._registry = registry
        self._holder = None
        if holder is not None:
            from prefect.client.schemas.objects import ConcurrencyLeaseHolder

            self._holder = ConcurrencyLeaseHolder(type="flow_run", id=holder)
        self._record: HolderFile | None = None
        self._by_count = registry is not None and registry.by_count
        self._last_reclaim = float("-inf")
        self._writes = SlotWrites()
        self._held: dict[str, _Lease] = {}  # every slot this run holds, lanes' and parked
        self._grants: dict[str, _Grant] = {}  # the writes that took them
        self._host_of = {limit: host for host, limit in self._names.items()}
        self._lost: set[str] = set()  # held leases the server no longer knows
        self._unsent: dict[str, _Unsent] = {}  # limit -> its give-back waiting its turn
        self._untaken: dict[str, _Takes] = {}  # host -> its take waiting its turn (by count)
        self._renewer: asyncio.Task | None = None
        self._parked: dict[str, list[_Lease]] = defaultdict(list)
        self._expiries: dict[str, asyncio.Task] = {}  # parked lease id -> its timer
        self._background: set[asyncio.Task] = set()
        self._lanes_waiting: dict[str, int] = defaultdict(int)  # lanes in ``_acquire``
        self._taking: dict[str, dict[object, float]] = defaultdict(dict)  # in ``_increment``
        self._parked_signal: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._on_parked: Callable[[str], None] | None = None
        self._closing = False  # close() ran; the record closes once nothing is held
        # waits marked and slots handed over to other runs' waiting lanes (``slot_turns``)
        self._turns = SlotTurns(registry.folder, label) if registry is not None else None
        self._handed: dict[str, float] = {}  # host -> when a slot last went to a waiting run
        self._since: dict[str, float] = {}  # held lease id -> when it was taken from the limit
        self._looked: dict[str, tuple[float, bool]] = {}  # host -> when, other runs waiting
        self._unlisten: Callable[[], None] | None = None  # the stop's wake-up of waiting lanes

    @classmethod
    async def open(
        cls,
        client: PrefectClient | SlotApi,
        limit_names: Mapping[str, str],
        *,
        timeout_s: float,
        capacity: Mapping[str, int] | None = None,
        handoff_s: float | None = HANDOFF_S,
        registry: Registry | None = None,
        label: str = "",
    ) -> HostSlots:
        """Record this run as a slot holder and give back the slots of runs that died.
        On the embedded server, where nothing else would free them, a run that finds no
        other live run there also zeroes its limits' counters (the folder lock keeps any
        run from joining between the look and the reset). ``registry``: given (a lane
        worker's, found by the run's process: ``tasks.lane_workers``; no holder), else
        ``client``'s, with this flow run as the holder of its leases. ``label``: the run
        in words, as another run waiting for these slots names it (a lane worker's is
        its run's)."""
        holder = None
        if registry is None:
            from prefect.context import FlowRunContext

            flow_run = FlowRunContext.get()
            holder = flow_run.flow_run.id if flow_run and flow_run.flow_run else None
            registry = registry_for(client)
        slots = cls(
            client,
            limit_names,
            timeout_s=timeout_s,
            registry=registry,
            holder=holder,
            capacity=capacity,
            handoff_s=handoff_s,
            label=label,
        )
        await slots.join()
        return slots

    async def join(self) -> None:
        """Record this run in its registry (see ``open``)."""
        registry = self._registry
        assert registry is not None
        lock = FolderLock(registry.folder)
        await asyncio.to_thread(lock.acquire)  # another run may hold it through API calls
        try:
            note = f"pid={os.getpid()} host={socket.gethostname()} flow_run={self._flow_run()}"
            if self._label:
                note += " run=" + " ".join(self._label.split())  # one line
            self._record = HolderFile.create(registry.folder, note)
            _OPEN_RECORDS[self._record] = registry.by_count
            self._record.uses(self._names)
            found = scan(registry.folder, self._record)
            _warn_of_namesakes(self._names, found.alive_hosts)
            await self._give_back_dead(found.dead)
            if registry.zero_when_alone and found.alive == 0:
                for name in self._names.values():
                    await self._writes.write(
                        lambda name=name: self._client.update_global_concurrency_limit(
                            name, _NoActiveSlots()
                        )
                    )
        finally:
            lock.release()

    def _flow_run(self) -> str:
        return str(self._holder.id) if self._holder else "-"

    def lane(self, host: str, watch: LaneWatch | None = None) -> LaneSlot:
        """A lane's hold on a slot of ``host``; ``watch``: told when it waits for one,
        holds one, holds none."""
        return LaneSlot(self, host, watch)

    @property
    def registry(self) -> Registry | None:
        """Where the runs sharing the server record their slots."""
        return self._registry

    def holders(self, host: str) -> list[tuple[str, int]]:
        """Who else holds slots of ``host``, as the registry's holder files list them
        (``slot_holders.holders_of``; not this run, by its ``label``)."""
        if self._registry is None:
            return []
        return holders_of(self._registry.folder, self._names[host], besides=self._label)

    async def take(self, host: str) -> _Lease:
        """A parked lease of ``host`` if one is waiting, else a new one."""
        return self.take_parked(host) or await self._acquire(host)

    def take_parked(self, host: str) -> _Lease | None:
        """A parked lease of ``host`` if one is waiting (no API call), else None. While
        another run waits for a slot of the host, not an idle slot of a lease of several:
        the lease goes back whole once none of its slots is used (``chunk_over``)."""
        parked = self._parked[host]
        withheld: list[_Lease] = []
        if any(map(self._of_several, parked)) and self._others_wait(host):
            withheld = [lease for lease in parked if self._of_several(lease)]
            parked[:] = [lease for lease in parked if not self._of_several(lease)]
        try:
            while parked:
                lease = parked.pop()
                expiry = self._expiries.pop(lease.id, None)
                if expiry is not None:
                    expiry.cancel()
                elif (grant := self._grants.get(lease.grant_id)) is not None:
                    grant.idle.discard(lease.id)  # a lease's idle slot, in use again
                if self.still_held(lease):
                    return lease
            return None
        finally:
            parked.extend(withheld)

    def _of_several(self, lease: _Lease) -> bool:
        """Whether ``lease`` is a slot of a Prefect lease of several (given back whole)."""
        grant = self._grants.get(lease.grant_id)
        return grant is not None and grant.leased and grant.slots > 1

    def _others_wait(self, host: str) -> bool:
        """Whether another run's lanes wait for a slot of ``host`` (``slot_turns``)."""
        return self._turns is not None and self._turns.others_wait(self._names[host])

    def turn_due(self, host: str, lease: _Lease) -> bool:
        """Whether ``lease``'s turn is over: this run took it ``TURN_S`` ago or more,
        holds more than half of the host's slots, and another run's lanes wait for one
        (``slot_turns``: looked at most every ``TURN_LOOK_EVERY_S``). A lane asks between
        its requests (``LaneSlot``): nothing is written while nobody waits."""
        if self._turns is None:
            return False
        now = _loop_time()
        if now - self._since.get(lease.id, now) < TURN_S:
            return False
        looked = self._looked.get(host)
        if looked is None or now - looked[0] >= TURN_LOOK_EVERY_S:
            looked = self._looked[host] = (now, self._others_wait(host))
        capacity = self._capacity.get(host)
        return looked[1] and (capacity is None or self.held(host) * 2 > capacity)

    async def hand_over(self, host: str, lease: _Lease) -> None:
        """Give ``lease`` back to the limit for another run's waiting lanes (their turn)
        and wake them; this run's lanes leave the limit to them for ``TURN_GRACE_S``. A
        slot of a lease of several waits, parked, for the lease's others: nothing goes
        back yet (``take_parked``)."""
        self._handed[host] = _loop_time()
        await self._give_back_idle([lease])
        if lease.grant_id not in self._grants and self._turns is not None:
            self._turns.handed_over(self._names[host])

    def chunk_over(self, host: str, lease: _Lease) -> None:
        """A lane's chunk ended holding ``lease``: parked for the lane's next chunk, or
        handed over if its turn is over (``turn_due``)."""
        if not self.turn_due(host, lease):
            self.park(host, lease)
            return
        handing = asyncio.ensure_future(self.hand_over(host, lease))
        self._background.add(handing)
        handing.add_done_callback(self._background.discard)

    def _their_turn(self, host: str) -> bool:
        """Whether this run handed a slot of ``host`` over within ``TURN_GRACE_S`` and
        another run's lanes still wait for one: its lanes leave the limit to them."""
        handed = self._handed.get(host)
        return (
            handed is not None and _loop_time() - handed < TURN_GRACE_S and self._others_wait(host)
        )

    async def try_take(self, host: str) -> _Lease | None:
        """A slot of ``host`` if one is free now (parked, or new), else None at once."""
        parked = self.take_parked(host)
        if parked is not None:
            return parked
        try:
            return await self._increment(host)
        except _SlotsFull:
            return None

    def still_held(self, lease: _Lease) -> bool:
        """False once a renewal found the lease gone (it expired: its slot is free)."""
        if lease.id in self._lost:
            self._lost.discard(lease.id)
            return False
        return True

    def held(self, host: str) -> int:
        """How many slots of ``host`` this run holds (lanes', spare and parked)."""
        name = self._names[host]
        return sum(1 for lease in self._held.values() if lease.limit == name)

    def holds_all(self, host: str) -> bool:
        """Whether this run holds every slot of ``host`` (its ``capacity`` known): a
        slot can then only come from the run's own calls, so the limit is not asked
        (each ask is an API write and a write to the server's database, and under load
        it held a lane for 0.2 s while a slot given back sat parked beside it)."""
        capacity = self._capacity.get(host)
        return capacity is not None and self.held(host) >= capacity

    def lanes_waiting(self, host: str) -> int:
        """How many lanes of this run wait for a slot of ``host`` (spare slots given back
        are parked for them first: ``tasks/adapters/spare_slots.py``)."""
        return self._lanes_waiting[host]

    def taking(self, host: str, lasted_s: float = TAKE_SAID_AFTER_S) -> int:
        """How many lanes of this run have waited ``lasted_s`` or more for their own
        run's write taking a slot of ``host`` (queued behind the run's other slot writes,
        or under way on a busy server): what they wait for, rather than a slot another
        run holds. A take answered at once (a full limit looked at again) is not one."""
        now = _loop_time()
        return sum(now - since >= lasted_s for since in self._taking[host].values())

    def on_parked(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(host)`` whenever a slot of ``host`` is parked: the run's
        spare slots hand it to a call waiting for one (``spare_slots``)."""
        self._on_parked = listener

    def park(self, host: str, lease: _Lease, hold_s: float | None = None) -> None:
        """Keep ``lease`` for the host's next chunk; release it if none comes within
        ``hold_s`` (default: the handoff's; with no handoff, kept until ``close`` while
        the process holds no more than its ``capacity``). A lane waiting for a slot takes
        it at once, else a call waiting for a spare slot (``on_parked``)."""
        self._parked[host].append(lease)
        if hold_s is None:
            hold_s = self._handoff_s
        if hold_s is None and self.held(host) > self._capacity.get(host, 0):
            hold_s = HANDOFF_S  # beyond its share (lanes asked together): back soon
        if hold_s is not None:
            expiry = asyncio.create_task(self._release_unclaimed(host, lease, hold_s))
            self._expiries[lease.id] = expiry
            self._background.add(expiry)
            expiry.add_done_callback(self._background.discard)
        self._parked_now(host)

    def _parked_now(self, host: str) -> None:
        self._parked_signal[host].set()  # a lane waiting in ``_acquire`` takes it at once
        if self._on_parked is not None:
            self._on_parked(host)

    async def reserve(self, hosts: tuple[HostSpec, ...]) -> None:
        """Take the lanes' first slots before the lanes start, in one write per host,
        and park them.

        Task runs starting together (one per chunk, before one per host) made the server
        persist their events while the lanes asked for slots; that collision cost the
        first request of every lane ~2 s. Only slots free right now are taken: a host
        shared with other runs is not waited for here (its lanes wait for their own
        slots); when the limit cannot give them all, as many as it has free are asked.
        They are kept for the lanes for ``RESERVE_HOLD_S``, not the handoff's
        second: under load the lanes' task run took longer than that to start, and each
        slot went back and was taken again, two more writes per slot (at 256 slots most
        of the embedded server's CPU while the lanes started,
        benchmarks/perf/throughput_goal.py)."""
        for host in hosts:
            count = host.slots
            while count > 0:
                try:
                    taken = await self._take_now(host.name, count)
                except _SlotsFull:
                    count = min(count - 1, await self._free(host.name))
                    continue
                hold_s = RESERVE_HOLD_S if self._handoff_s is not None else None
                for lease in taken:
                    self.park(host.name, lease, hold_s)
                break

    async def _free(self, host: str) -> int:
        """How many slots of ``host``'s limit are free now (a read, no write)."""
        limit = await self._client.read_global_concurrency_limit_by_name(self._names[host])
        return limit.limit - limit.active_slots

    async def release(self, lease: _Lease) -> None:
        """Give ``lease`` back; the write goes on if the caller is cancelled meanwhile.
        A slot of a lease of several stays parked for the run until the lease's last
        one is given back (``_give_back_idle``)."""
        await self._give_back_idle([lease])

    async def _give_back_idle(self, leases: Iterable[_Lease]) -> None:
        """Give back slots the run stopped using (none of them parked): by count on the
        embedded server, one write per limit; a lease of one slot at once; a lease of
        several once none of its slots is used, in one write (until then a slot of it
        is parked for the run with no expiry)."""
        writes: dict[str, list[_Lease]] = defaultdict(list)
        for lease in leases:
            grant = self._grants.get(lease.grant_id)
            if grant is not None and grant.leased and grant.slots > 1:
                grant.idle.add(lease.id)
                if len(grant.idle) < grant.slots:
                    host = self._host_of[lease.limit]
                    self._parked[host].append(lease)
                    self._parked_now(host)
                    continue
                self._unpark(grant)
                writes[grant.id] = [s for s in self._held.values() if s.grant_id == grant.id]
            else:
                writes[lease.limit if self._by_count else lease.grant_id].append(lease)
        for key, group in writes.items():
            await self._write_give_back(key, group)
        if self._closing and not self._held:
            self._close_record()

    def _unpark(self, grant: _Grant) -> None:
        host = self._host_of[grant.limit]
        self._parked[host] = [s for s in self._parked[host] if s.grant_id != grant.id]

    async def _write_give_back(self, key: str, group: list[_Lease]) -> None:
        for lease in group:
            self._held.pop(lease.id, None)
            self._since.pop(lease.id, None)
            self._lost.discard(lease.id)
            grant = self._grants.get(lease.grant_id)
            if grant is not None and (grant.leased or grant.slots <= 1):
                del self._grants[grant.id]
            elif grant is not None:
                grant.slots -= 1
        if self._record is not None and not self._record.giving_back(*(s.id for s in group)):
            return  # an interrupt's thread gave them back (``give_back_on_exit``)
        held = [Held(lease.id, lease.limit) for lease in group]
        write = (
            self._give_back_counted(key, held)
            if self._by_count
            else self._writes.write(
                lambda: _give_back_call(self._client, key, held, by_count=False)
            )
        )
        await asyncio.shield(self._writes.finish_even_if_cancelled(write))

    async def _give_back_counted(self, key: str, held: list[Held]) -> None:
        """Give back ``held`` (slots of limit ``key``) by count: in the write of that
        limit's give-back that still waits for its turn, if there is one, else in a write
        of its own. A run's slot writes go one at a time (``SlotWrites``): with a write
        per slot, 1,024 lanes on a 64-slot host whose work ran out together gave their
        slots back in ~1,000 writes in a row (~50 s on 2 loaded cores), which the run's
        end, and any lane needing a slot meanwhile, waited behind."""
        unsent = self._unsent.get(key)
        if unsent is not None:  # a write of this limit waits for its turn: ride along
            unsent.slots.extend(held)
            await asyncio.shield(unsent.sent)
            return
        unsent = self._unsent[key] = _Unsent(list(held), asyncio.get_running_loop().create_future())
        unsent.sent.add_done_callback(lambda sent: sent.cancelled() or sent.exception())

        def call() -> Any:
            if self._unsent.get(key) is unsent:  # sent from now on: later ones go next
                del self._unsent[key]
            return _give_back_call(self._client, key, unsent.slots, by_count=True)

        try:
            await self._writes.write(call)
        except BaseException as exc:
            if self._unsent.get(key) is unsent:
                del self._unsent[key]
            if isinstance(exc, asyncio.CancelledError):
                unsent.sent.cancel()
            else:
                unsent.sent.set_exception(exc)
            raise
        unsent.sent.set_result(None)

    async def close(self) -> None:
        """Release every parked lease now (the run's generation is over), once the slot
        writes still under way have ended (a slot granted to a cancelled lane is parked)."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self._turns is not None:
            self._turns.close()
        await self._writes.settle()
        for expiry in self._expiries.values():
            expiry.cancel()
        self._expiries.clear()
        await asyncio.gather(*self._background, return_exceptions=True)
        parked = [lease for leases in self._parked.values() for lease in leases]
        self._parked.clear()
        await self._give_back_idle(parked)
        self._closing = True
        if not self._held:
            self._close_record()
        # Else a lane still holds one: the record stays open, locked and listed for an
        # interrupt's give_back_on_exit until that lane gives its slot back (which closes
        # it); if the process ends first, the next run gives the slot back. Leaving it
        # here made a Ctrl-C just after the generation phase skip those slots.

    def _close_record(self) -> None:
        if self._record is not None:
            _OPEN_RECORDS.pop(self._record, None)
            self._record.close()
            self._record = None

    async def _release_unclaimed(self, host: str, lease: _Lease, hold_s: float) -> None:
        await asyncio.sleep(hold_s)
        self._parked[host].remove(lease)
        del self._expiries[lease.id]
        await self._give_back_idle([lease])  # not cancelled by close(), which waits for it

    async def _acquire(self, host: str) -> _Lease:
        """Wait for a slot of ``host`` (polling while the limit is full, and giving
        back slots of dead runs found meanwhile); a slot parked meanwhile is taken at
        once. Nothing of the lane's case is on the wire meanwhile (``waiting_for_slot``:
        a stop does not wait for it), and a stop parks the lane at once."""
        self._lanes_waiting[host] += 1
        try:
            with waiting_for_slot():
                return await self._poll_for_slot(host)
        finally:
            self._lanes_waiting[host] -= 1
            if not self._lanes_waiting[host] and self._turns is not None:
                self._turns.wait_ends(self._names[host])

    async def _poll_for_slot(self, host: str) -> _Lease:
        """A slot of ``host`` once one comes free (its wait is said by the run, once for
        all its lanes: ``evaluation.run._slot_waits``); after ``stop_sending``, none: the
        lane parks (the process is exiting; a slot taken now would only go back)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        parked = self._parked_signal[host]
        self._wake_on_stop(loop)
        while True:
            if sending_stopped():
                if self._turns is not None:  # it takes no slot now: no run hands one over
                    self._turns.wait_ends(self._names[host])
                await park()
            parked.clear()
            lease = self.take_parked(host)
            if lease is not None:
                return lease
            if self._their_turn(host):
                wait = TURN_LOOK_S  # a slot this run handed over: the waiting run's
            elif self.holds_all(host):
                wait = MAX_POLL_S  # only this run's own slots can come back: parked here
            else:
                try:
                    return await self._increment(host)
                except _SlotsFull as full:
                    if await self._reclaim():
                        continue
                    if self._turns is not None:  # another run here hands one over
                        self._turns.wait_starts(self._names[host])
                    wait = min(full.retry_after_s, MAX_POLL_S) * random.uniform(0.5, 1.0)
            if loop.time() + wait > deadline:
                if not self._busy_elsewhere(host):
                    raise SlotUnavailable(
                        f"no slot of {self._names[host]} came free within {self._timeout_s:.0f} s"
                    )
                deadline = loop.time() + self._timeout_s  # the host serves another run
            await self._next_look(host, parked, wait)

    async def _next_look(self, host: str, parked: asyncio.Event, wait: float) -> None:
        """Wait ``wait`` seconds, or less: until a slot of ``host`` is parked here, or
        (while this run's lanes wait for one) another run hands one over."""
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        limit = self._names[host]
        turns = self._turns if self._turns is not None and self._turns.marked(limit) else None
        seen = turns.handovers(limit) if turns is not None else None
        while (left := end - loop.time()) > 0:
            step = min(left, TURN_LOOK_S) if turns is not None else left
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(parked.wait(), step)
                return
            if turns is not None and turns.handovers(limit) != seen:
                return

    def _busy_elsewhere(self, host: str) -> bool:
        """Whether another live run on this machine uses ``host`` (``used_by_others``):
        the host is alive, serving it; a lane waits on for its turn (``slot_turns``)
        rather than give up after ``timeout_s``."""
        if self._registry is None:
            return False
        return used_by_others(self._registry.folder, self._names[host], self._record)

    def _wake_on_stop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have ``stop_sending`` (from any thread) wake the lanes waiting for a slot, so
        that they park at once rather than at their next look (up to ``MAX_POLL_S``, or
        a slot write later)."""
        if self._unlisten is not None:
            return

        def wake() -> None:
            for signal in list(self._parked_signal.values()):
                signal.set()

        def from_any_thread() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(wake)

        self._unlisten = on_stop_sending(from_any_thread)

    async def _increment(self, host: str) -> _Lease:
        """Take one slot now; ``_SlotsFull`` when the limit has none free. On the
        embedded server (slots counted), in the write of that limit's take that still
        waits for its turn, if there is one (``_take_counted``)."""
        take = object()
        self._taking[host][take] = _loop_time()
        try:
            if self._by_count:
                return await self._take_counted(host)
            (lease,) = await self._take_now(host, 1)
            return lease
        finally:
            del self._taking[host][take]

    async def _take_counted(self, host: str) -> _Lease:
        """One slot of ``host`` by count, taken with those of the other lanes asking
        while the write waits for its turn: one increment of N, not N writes. A run's
        slot writes go one at a time (``SlotWrites``): 1,024 lanes on a 64-slot host that
        found their reserved slots gone (``RESERVE_HOLD_S``) took theirs in ~1,000
        writes in a row, and under load the last waited past the busy budget. A lane
        cancelled while it waits leaves the write; once the write is sent, the slot it
        brings that lane is parked (as ``_take_now`` parks one)."""
        takes = self._untaken.get(host)
        if takes is None:
            takes = self._untaken[host] = _Takes()
            self._writes.finish_even_if_cancelled(self._send_takes(host, takes))
        mine: asyncio.Future[_Lease] = asyncio.get_running_loop().create_future()
        takes.waiting.append(mine)
        try:
            return await asyncio.shield(mine)
        except asyncio.CancelledError:
            if not takes.sent:
                takes.waiting.remove(mine)
                mine.cancel()
            else:
                mine.add_done_callback(
                    lambda done: (
                        done.cancelled() or done.exception() or self.park(host, done.result())
                    )
                )
            raise

    async def _send_takes(self, host: str, takes: _Takes) -> None:
        """Send ``takes`` in one write once it is this run's turn. When the limit has
        fewer slots free than lanes asked, as many as it has go to the first of them
        (as ``reserve`` asks) and the others hear ``_SlotsFull``: they look again as any
        lane does."""

        def sent() -> int:
            if self._untaken.get(host) is takes:  # askers from now on start a new write
                del self._untaken[host]
            takes.sent = True
            return len(takes.waiting)

        count: int | Callable[[], int] = sent
        asked = 0  # how many the last write asked for
        failure: BaseException | None = None
        try:
            while True:
                try:
                    leases = await self._request_slots(host, count)
                except _SlotsFull as full:
                    asked = asked or len(takes.waiting)
                    free = await self._free(host) if asked > 1 else 0
                    if free <= 0:
                        failure = full
                        break
                    asked = count = min(asked - 1, free)
                    continue
                for lease, waiting in zip(leases, takes.waiting, strict=False):
                    waiting.set_result(lease)
                break
        except BaseException as exc:  # every lane that asked hears it
            failure = exc
            raise
        finally:
            if self._untaken.get(host) is takes:
                del self._untaken[host]
            for waiting in takes.waiting:
                if waiting.done():
                    continue
                if isinstance(failure, asyncio.CancelledError):
                    waiting.cancel()
                elif failure is None or isinstance(failure, _SlotsFull):
                    waiting.set_exception(_SlotsFull(getattr(failure, "retry_after_s", MAX_POLL_S)))
                else:
                    waiting.set_exception(failure)

    async def _take_now(self, host: str, count: int) -> list[_Lease]:
        """Take ``count`` slots now, in one write; ``_SlotsFull`` when the limit has
        not that many free.

        A lane cancelled while the request is under way (a cancelled run) stops waiting,
        but the server may grant the slots all the same: the request goes on, and slots
        it brings are parked, so their handoff timer or ``close`` gives them back. Without
        that they stay taken until their lease expires, and for good on a server that
        runs no expiry service (Prefect's test harness)."""
        request = self._writes.finish_even_if_cancelled(self._request_slots(host, count))
        try:
            return await asyncio.shield(request)
        except asyncio.CancelledError:
            request.add_done_callback(lambda done: self._park_if_granted(host, done))
            raise

    def _park_if_granted(self, host: str, request: asyncio.Task) -> None:
        if not request.cancelled() and request.exception() is None:
            for lease in request.result():
                self.park(host, lease)

    async def _request_slots(self, host: str, asked: int | Callable[[], int]) -> list[_Lease]:
        """One write for ``asked`` slots (a count, or told by ``asked()`` when the write's
        turn comes: ``_send_takes``): a lease of them, or on the embedded server
        (``by_count``) a count, listed in the holder file under a name of our own."""
        name = self._names[host]
        count = asked if isinstance(asked, int) else 0

        def call() -> Any:
            nonlocal count
            if not isinstance(asked, int):
                count = asked()
            if count == 0:
                return _no_answer()
            if self._by_count:
                return self._client.increment_concurrency_slots(
                    names=[name], slots=count, mode="concurrency"
                )
            return self._client.increment_concurrency_slots_with_lease(
                names=[name],
                slots=count,
                mode="concurrency",
                lease_duration=self._lease_s,
                holder=self._holder,
            )

        try:
            response = await self._writes.write(call)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 422 and count > 1:  # more than the limit has
                raise _SlotsFull(MAX_POLL_S) from exc
            if exc.response.status_code != 423:
                raise
            raise _SlotsFull(float(exc.response.headers.get("Retry-After", MAX_POLL_S))) from exc
        if count == 0:
            return []
        body = response.json()
        if not (body if self._by_count else body.get("limits")):
            raise SlotUnavailable(f"concurrency limit {name} does not exist")
        grant = uuid.uuid4().hex if self._by_count else body["lease_id"]
        if count == 1:
            leases = [_Lease(grant, name)]
        else:
            leases = [_Lease(f"{grant}/{i}", name, grant) for i in range(count)]
        if self._record is not None:
            self._record.took_all(Held(lease.id, name) for lease in leases)
        self._grants[grant] = _Grant(grant, name, count, leased=not self._by_count)
        self._held.update((lease.id, lease) for lease in leases)
        now = _loop_time()
        self._since.update((lease.id, now) for lease in leases)
        if self._renewer is None and not self._by_count:
            self._renewer = asyncio.create_task(self._renew_forever())
        return leases

    async def _renew_forever(self) -> None:
        """Renew every held lease while the run lives: a dead run's leases then expire
        within a minute (on a shared server), and a live run's never do, however long a
        request takes."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S * self._lease_s / LEASE_S)
            for grant in [g for g in self._grants.values() if g.leased]:
                try:
                    await self._writes.write(
                        lambda grant=grant: self._client.renew_concurrency_lease(
                            grant.id, self._lease_s
                        )
                    )
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code in (404, 410):  # expired: the slots are free
                        self._lose(grant)
                    else:
                        logger.warning("could not renew a slot lease: %s", exc)
                except (httpx.HTTPError, SlotUnavailable) as exc:
                    logger.warning("could not renew a slot lease: %s", exc)

    def _lose(self, grant: _Grant) -> None:
        """The server no longer knows ``grant``'s lease: its slots are free, not ours."""
        self._grants.pop(grant.id, None)
        for lease in [s for s in self._held.values() if s.grant_id == grant.id]:
            self._held.pop(lease.id)
            self._since.pop(lease.id, None)
            self._lost.add(lease.id)

    async def _reclaim(self) -> bool:
        """Give back the slots of dead runs, at most every ``RECLAIM_EVERY_S``."""
        loop = asyncio.get_running_loop()
        if self._registry is None or loop.time() - self._last_reclaim < RECLAIM_EVERY_S:
            return False
        self._last_reclaim = loop.time()
        return await self._give_back_dead(scan(self._registry.folder, self._record).dead) > 0

    async def _give_back_dead(self, dead: list[HolderFile]) -> int:
        """Give back the slots ``dead`` runs' files list (``dead_run_slots``)."""
        by_count = self._registry is not None and self._registry.by_count
        return await give_back_dead(self._client, self._writes.write, dead, by_count=by_count)
