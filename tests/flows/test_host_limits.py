"""Per-host concurrency limits: created or resized by every run, even runs that start
at the same moment."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from prefect.client.orchestration import get_client

from evaluation.spec import HostSpec
from tasks import host_slots
from tasks.host_slots import (
    HostSlots,
    SlotUnavailable,
    _fail_fast_when_busy,
    host_limit_name,
    size_limits,
    slot_client,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_runs_starting_together_both_size_the_limit_and_a_resize_applies():
    host = HostSpec("Race Host", "http://x", slots=3)

    async def main() -> int:
        async with get_client() as a, get_client() as b:
            await asyncio.gather(
                size_limits(a, (host,), reset_active=False),
                size_limits(b, (host,), reset_active=False),
            )
            resized = HostSpec("Race Host", "http://x", slots=5)
            names = await size_limits(a, (resized,), reset_active=False)
            limit = await a.read_global_concurrency_limit_by_name(names["Race Host"])
            return limit.limit

    assert asyncio.run(main()) == 5
    assert host_limit_name(host) == "ollama-host-race-host"


def test_a_lane_never_holds_more_than_one_slot_and_frees_it_on_failure():
    host = HostSpec("lane-host", "http://x", slots=1)

    async def main() -> list[int]:
        async with get_client() as client:
            names = await size_limits(client, (host,), reset_active=True)
            slots = HostSlots(client, names, lease_s=60, timeout_s=5)
            lane = slots.lane("lane-host")
            seen = []

            async def active() -> int:
                limit = await client.read_global_concurrency_limit_by_name(names["lane-host"])
                return limit.active_slots

            async with lane.attempt():
                seen.append(await active())
            async with lane.attempt():  # back-to-back: the same slot is kept
                seen.append(await active())
            with pytest.raises(RuntimeError):
                async with lane.attempt():
                    raise RuntimeError("attempt failed")
            seen.append(await active())  # given back before any retry wait
            return seen

    assert asyncio.run(main()) == [1, 1, 0]


async def _active(client, name: str) -> int:
    return (await client.read_global_concurrency_limit_by_name(name)).active_slots


def test_a_finished_chunk_hands_its_slot_to_the_next_and_an_unclaimed_one_is_released():
    host = HostSpec("handoff-host", "http://x", slots=1)

    async def main() -> list[int]:
        async with get_client() as client, slot_client() as writer:
            names = await size_limits(client, (host,), reset_active=True)
            name = names["handoff-host"]
            slots = HostSlots(writer, names, lease_s=60, timeout_s=1, handoff_s=0.3)
            first = slots.lane("handoff-host")
            async with first.attempt():
                pass
            first.finish()
            seen = [await _active(client, name)]  # parked: still held
            second = slots.lane("handoff-host")
            # With one slot, a fresh acquisition would wait and time out after 1 s;
            # taking the parked lease needs no slot.
            async with second.attempt():
                seen.append(await _active(client, name))
            second.finish()
            await asyncio.sleep(0.6)  # nobody takes it: released after handoff_s
            seen.append(await _active(client, name))
            await slots.close()
            return seen

    assert asyncio.run(main()) == [1, 1, 0]


def test_reserve_takes_only_free_slots_and_close_gives_parked_ones_back():
    host = HostSpec("reserve-host", "http://x", slots=3)

    async def main() -> list[int]:
        async with get_client() as client, slot_client() as writer:
            names = await size_limits(client, (host,), reset_active=True)
            name = names["reserve-host"]
            other_run = HostSlots(client, names, lease_s=60, timeout_s=1)
            held = other_run.lane("reserve-host")
            async with held.attempt():  # another run holds one of the three slots
                pass
            slots = HostSlots(writer, names, lease_s=60, timeout_s=1, handoff_s=30)
            await asyncio.wait_for(slots.reserve((host,)), timeout=5)  # never waits
            seen = [await _active(client, name)]
            await slots.close()
            seen.append(await _active(client, name))
            await held.release()
            seen.append(await _active(client, name))
            return seen

    assert asyncio.run(main()) == [3, 1, 0]


def test_a_lease_past_half_its_life_is_renewed_and_an_expired_one_replaced():
    host = HostSpec("renew-host", "http://x", slots=2)

    async def main() -> tuple[bool, bool, int]:
        async with get_client() as client, slot_client() as writer:
            names = await size_limits(client, (host,), reset_active=True)
            slots = HostSlots(writer, names, lease_s=60, timeout_s=1)
            lease = await slots.take("renew-host")
            now = asyncio.get_running_loop().time()
            fresh = await slots.renew_if_due("renew-host", lease)
            old = type(lease)(lease.id, now - 31)  # past half of 60 s
            renewed = await slots.renew_if_due("renew-host", old)
            gone = type(lease)(str(uuid.uuid4()), now - 31)  # expired on the server
            replaced = await slots.renew_if_due("renew-host", gone)
            active = await _active(client, names["renew-host"])
            await slots.release(renewed)
            await slots.release(replaced)
            return (
                fresh is lease,
                renewed.id == lease.id and renewed.renewed_at > now,
                replaced.id != gone.id and active,
            )

    assert asyncio.run(main()) == (True, True, 2)


def test_a_busy_answer_is_tried_again_at_once_and_gives_a_clear_error_in_the_end(
    monkeypatch,
):
    slots = HostSlots(None, {}, lease_s=60, timeout_s=1)
    calls = []

    async def busy_twice():
        calls.append(time.perf_counter())
        if len(calls) <= 2:
            await _fail_fast_when_busy(
                httpx.Response(503, request=httpx.Request("POST", "http://x/y"))
            )
        return "ok"

    async def always_busy():
        await _fail_fast_when_busy(httpx.Response(503, request=httpx.Request("POST", "http://x/y")))

    async def main():
        started = time.perf_counter()
        result = await slots._write(busy_twice)
        elapsed = time.perf_counter() - started
        monkeypatch.setattr(host_slots, "BUSY_TRIES", 3)
        with pytest.raises(SlotUnavailable, match="stayed busy through 3 tries"):
            await slots._write(always_busy)
        return result, elapsed

    result, elapsed = asyncio.run(main())
    assert result == "ok" and len(calls) == 3
    assert elapsed < 0.5  # Prefect's own client would have waited 2 s, then 4 s
