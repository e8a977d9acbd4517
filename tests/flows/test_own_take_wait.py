"""A run's lanes waiting for their own run's take of a host's slots say so: 1,024 lanes
whose reserved slots had gone back each waited for a take of the run's own, queued behind
its other slot writes (one at a time), and the line said "held by no other run listed on
this machine: one on another machine?" for every host. Counted on a clock moved by hand
(an event loop's), a stand-in Prefect API that answers the take when told: nothing timed."""

from __future__ import annotations

import asyncio

from evaluation.run._slot_waits import wait_words
from evaluation.spec import HostSpec
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_holders import run_holders
from tasks.adapters.slot_registry import Registry
from tests.flows.test_lane_worker_slots import _Clock, _Response

HOST = HostSpec("h", "http://h", slots=4)
MINE = "'mine' (process 22 on box)"


class _TakeAnsweredWhenTold:
    """The embedded server's slot API (by count), its takes answered once ``answer`` is set."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.taken: list[int] = []

    async def increment_concurrency_slots(self, names, slots, mode):
        await self.answer.wait()
        self.taken.append(slots)
        return _Response([{"name": names[0]}])

    async def release_concurrency_slots(self, names, slots, occupancy_seconds):
        return _Response([])


def test_lanes_waiting_for_their_own_runs_take_say_so_not_another_machine(tmp_path):
    loop = _Clock()

    async def main() -> list[str]:
        api = _TakeAnsweredWhenTold()
        slots = HostSlots(
            api,
            {"h": "limit-h"},
            timeout_s=600,
            registry=Registry(tmp_path, by_count=True),
            capacity={"h": HOST.slots},
            label=MINE,
        )
        await slots.join()

        def words() -> str:
            held = run_holders(tmp_path, "limit-h", MINE, taking=slots.taking("h"))
            return wait_words("h", 3, held, 31, HOST.slots)

        lanes = [asyncio.ensure_future(slots.take("h")) for _ in range(3)]
        await loop.later(0.5)
        said = [words()]  # a take not answered for half a second: not yet the cause
        await loop.later(1.0)
        said.append(words())
        api.answer.set()
        leases = await asyncio.gather(*lanes)
        said.append(words())  # the run holds 3 of 4 itself: the fourth is nobody's here
        assert api.taken == [3] and slots.taking("h", lasted_s=0) == 0
        for lease in leases:
            await slots.release(lease)
        await slots.close()
        return said

    try:
        said = loop.run_until_complete(main())
    finally:
        loop.close()
    wait = "3 lanes waiting 31 s so far for a free slot of host 'h' "
    assert said == [
        wait + "(held by no other run listed on this machine: one on another machine?)",
        wait + "(this run's own take of 3 slots not answered yet: its slot writes go to "
        "the Prefect server one at a time)",
        wait + "(held by this run itself, 3 of its 4; the rest by no other run listed on "
        "this machine: one on another machine?)",
    ]
