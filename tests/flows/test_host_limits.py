"""Per-host concurrency limits: created or resized by every run, even runs that start
at the same moment."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client

from evaluation.spec import HostSpec
from tasks.host_slots import HostSlots, host_limit_name, size_limits

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
            await lane.release()
            return seen

    assert asyncio.run(main()) == [1, 1, 0]
