"""A pipeline's parallel calls keep the host's slots busy (issue 28.1): a spare slot a
call gives back goes to a waiting call at once, of its case or another, and a host never
gets more requests than its slots. Driven step by step (calls end when the test says),
so nothing here depends on timing."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

import httpx

from evaluation.backends.base import GenerationRequest, GenerationResult
from evaluation.backends.retry import RetryPolicy
from evaluation.run._pipelines import CaseRoute, SharedCalls, run_case
from evaluation.spec import HostSpec
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_leases import _Lease
from tasks.adapters.spare_slots import PoolSpareSlots
from tests.evaluation.pipelines.test_runtime import MAP_REDUCE, SUITE, item

HOST = HostSpec("a", "http://a", slots=4)


class FakeHostSlots:
    """A host limit of ``HOST.slots`` with ``HostSlots``' spare-slot surface; counts
    the API asks (increments) made."""

    def __init__(self) -> None:
        self.taken, self.asks, self.parked = 0, 0, []
        self.lanes = 0  # lanes of the run waiting for a slot
        self.listener = None  # told of each slot parked (``HostSlots.on_parked``)

    def on_parked(self, listener) -> None:
        self.listener = listener

    def take_parked(self, host: str) -> _Lease | None:
        return self.parked.pop() if self.parked else None

    async def try_take(self, host: str) -> _Lease | None:
        parked = self.take_parked(host)
        if parked is not None:
            return parked
        self.asks += 1
        await asyncio.sleep(0)
        if self.taken >= HOST.slots:
            return None
        self.taken += 1
        return _Lease(f"l{self.taken}", "limit")

    def park(self, host: str, lease: _Lease) -> None:
        self.parked.append(lease)
        if self.listener is not None:
            self.listener(host)

    def lanes_waiting(self, host: str) -> int:
        return self.lanes

    def held(self, host: str) -> int:
        return self.taken  # every slot taken is this run's


@dataclass
class SteppedBackend:
    """Each call waits until the test ends it; counts calls in flight."""

    host: HostSpec = HOST
    in_flight: list[asyncio.Event] = field(default_factory=list)
    peak: int = 0
    calls: int = 0
    open: bool = False  # calls end at once (the test is over)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        done = asyncio.Event()
        if self.open:
            done.set()
        self.in_flight.append(done)
        self.calls += 1
        self.peak = max(self.peak, len(self.in_flight))
        await done.wait()
        return GenerationResult("ok", "stop", 0.0, None, 3, 1)

    def end_one(self) -> None:
        self.in_flight.pop(0).set()

    def end_all(self) -> None:
        self.open = True
        while self.in_flight:
            self.end_one()

    async def aclose(self) -> None:
        return None


async def settle() -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(50):
        await asyncio.sleep(0)


def test_a_spare_given_back_goes_to_a_waiting_call_at_once():
    async def main() -> None:
        backend, slots = SteppedBackend(), FakeHostSlots()
        slots.taken = 2  # two lanes (the two cases') hold two of the four slots
        spares = PoolSpareSlots(slots, [HOST])
        shared = SharedCalls({"a": backend}, spares)
        document = " ".join(f"w{i}" for i in range(200))  # 20 maps + reduce per case
        cases = [
            asyncio.create_task(
                run_case(
                    item(
                        "map_reduce", MAP_REDUCE, document=document, chunk_size=10, chunk_overlap=0
                    ),
                    SUITE,
                    CaseRoute(backend, RetryPolicy(), shared=shared),
                )
            )
            for _ in range(2)
        ]
        try:
            await settle()
            assert len(backend.in_flight) == 4  # both lanes and both free slots
            asks = slots.asks
            while not all(c.done() for c in cases):
                assert backend.in_flight, "calls wait while no call runs"
                backend.end_one()
                await settle()  # no time passes: the slot must be taken again right away
                if backend.calls < 20:  # maps wait for slots: the freed one went to one
                    assert len(backend.in_flight) == 4
            # nothing waited on a poll, and the full limit was not asked again and again
            assert backend.calls == 42 and backend.peak == 4
            assert slots.asks - asks <= 1 and slots.taken == 4
        finally:  # a failed check leaves no call hanging
            backend.end_all()
            await asyncio.gather(*cases, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), 60))  # a hang fails, not blocks


def test_a_lane_waiting_for_a_slot_comes_before_spare_calls():
    """A lane that cannot start its case gets the slots given back; spare calls wait
    (and the poller does not spin taking and parking the same slot)."""

    async def main() -> None:
        slots = FakeHostSlots()
        slots.taken, slots.lanes = 4, 1
        spares = PoolSpareSlots(slots, [HOST])
        grant = asyncio.get_running_loop().create_future()
        spares.wait_for("m", grant)
        slots.parked.append(_Lease("freed", "limit"))
        assert await spares.try_take("m") is None and slots.asks == 0
        await asyncio.sleep(0.2)  # the poller's rounds pass over the lane's slot
        assert not grant.done() and slots.parked == [_Lease("freed", "limit")]
        slots.lanes = 0  # the lane took another slot: the spare call may have this one
        await asyncio.wait_for(grant, 5)
        assert grant.result().lease == _Lease("freed", "limit")

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_host_whose_slots_are_all_the_runs_is_not_asked_for_more():
    """Issue 28.1: while a long map waits for slots the run holds itself, the poller asks
    no Prefect API write of the full limit (it asked every 0.2 s), and a slot given back
    to the limit (a lane's chunk ended) is still found."""

    async def main() -> None:
        slots = FakeHostSlots()
        slots.taken = 4  # the lane and three spare calls
        spares = PoolSpareSlots(slots, [HOST])
        grant = asyncio.get_running_loop().create_future()
        spares.wait_for("m", grant)
        await asyncio.sleep(0.5)  # the poller's rounds
        assert slots.asks == 0 and not grant.done()
        slots.taken = 3  # a lane's slot went back to the limit
        await asyncio.wait_for(grant, 5)
        assert slots.asks == 1 and slots.taken == 4

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_slot_parked_by_a_lane_goes_to_a_waiting_call_at_once():
    """A lane whose chunk ended parks its slot for its next chunk, whose task takes a
    while to start: a call waiting for a spare slot gets it at once, not at the poller's
    next round (an idle slot meanwhile), unless a lane of the run waits for one."""

    async def main() -> None:
        slots = FakeHostSlots()
        slots.taken = 4  # three lanes' slots and this one's, all the run's
        spares = PoolSpareSlots(slots, [HOST])
        first, second = (asyncio.get_running_loop().create_future() for _ in range(2))
        spares.wait_for("m", first)
        spares.wait_for("m", second)
        slots.park("a", _Lease("ended", "limit"))  # a lane's chunk ended
        await settle()  # no time passes
        assert first.done() and first.result().lease == _Lease("ended", "limit")
        assert not second.done() and slots.parked == []
        slots.lanes = 1  # a lane waits: the next slot parked is the lane's
        slots.park("a", _Lease("for-lane", "limit"))
        await settle()
        assert not second.done() and slots.parked == [_Lease("for-lane", "limit")]
        second.cancel()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_lane_slot_its_case_has_no_call_for_goes_to_another_cases_call():
    """Parallel sections: the section on the lane's slot ends while the other runs on a
    spare slot and the assembly waits for both. The lane's slot, idle until then, is
    lent to another case's call waiting for one; the lane keeps it when nobody waits."""

    async def main() -> None:
        backend, slots = SteppedBackend(), FakeHostSlots()
        slots.taken = 4  # the lane's slot, one parked, two of other lanes
        slots.parked.append(_Lease("spare", "limit"))
        spares = PoolSpareSlots(slots, [HOST])
        lane, lent = _Lease("lane", "limit"), []

        def lend() -> None:  # what LaneSlot.lend does with the run's spare slots
            if lane not in lent and spares.lend(HOST.name, lane):
                lent.append(lane)

        sections = {"a": "A {document}", "b": "B {document}"}
        params = {"sections": sections, "assembly_prompt": "{sections}"}
        route = CaseRoute(backend, RetryPolicy(), shared=SharedCalls({"a": backend}, spares))
        case = asyncio.create_task(
            run_case(
                item("sections", params, document="Revenue rose.", parallel=True),
                SUITE,
                dataclasses.replace(route, lend=lend),
            )
        )
        try:
            await settle()
            assert len(backend.in_flight) == 2  # section a on the lane, b on the spare
            other = asyncio.get_running_loop().create_future()  # another case's call
            spares.wait_for("m", other)
            backend.end_one()  # section a ends; b runs on; nobody of the case waits
            await settle()
            assert other.done() and other.result().lease == lane and lent == [lane]
            await other.result().release()  # the other call is done: nobody waits now
            backend.end_one()  # section b ends: the assembly takes the lane
            await settle()
            assert len(backend.in_flight) == 1 and lent == [lane]
            backend.end_one()
            await case
        finally:
            backend.end_all()
            await asyncio.gather(case, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_nothing_is_lent_when_nobody_waits():
    slots = FakeHostSlots()
    spares = PoolSpareSlots(slots, [HOST])

    async def main() -> bool:
        return spares.lend(HOST.name, _Lease("lane", "limit"))

    assert asyncio.run(main()) is False and slots.parked == []


class CountingSlotClient:
    """The Prefect client's slot writes for ``HostSlots``: a limit of ``size`` slots;
    counts the increments asked (each an API write)."""

    def __init__(self, size: int) -> None:
        self.size, self.active, self.increments = size, 0, 0

    async def increment_concurrency_slots_with_lease(self, **_) -> httpx.Response:
        self.increments += 1
        request = httpx.Request("POST", "http://prefect/increment")
        if self.active >= self.size:
            response = httpx.Response(423, headers={"Retry-After": "1"}, request=request)
            raise httpx.HTTPStatusError("full", request=request, response=response)
        self.active += 1
        body = {"limits": [{"name": "limit"}], "lease_id": f"l{self.increments}"}
        return httpx.Response(200, json=body, request=request)


def test_a_lane_waits_without_asking_a_limit_whose_slots_are_all_the_runs():
    """Issue 28.1: a lane whose slot was lent waits for one of the run's own slots to
    come back; it does not ask the limit, which has none (an API write and a server
    database write each time, and under load the ask held the lane while a slot given
    back sat parked beside it)."""

    async def main() -> None:
        client = CountingSlotClient(size=1)
        slots = HostSlots(client, {"a": "limit"}, timeout_s=30, capacity={"a": 1})
        held = await slots.take("a")  # the run's only slot, out on a spare call
        asks = client.increments
        waiting = asyncio.create_task(slots.lane("a").attempt().__aenter__())
        await settle()
        assert not waiting.done() and client.increments == asks  # nothing asked
        slots.park("a", held)  # the spare call gave it back
        await asyncio.wait_for(waiting, 5)
        assert client.increments == asks
        await slots.close()

    asyncio.run(asyncio.wait_for(main(), 60))
