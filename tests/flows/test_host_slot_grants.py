"""A host's slots taken in one write (``HostSlots.reserve``): N slots of a limit at once,
one lease of N on a shared server, a count of N on the embedded one, and given back
slot by slot by count, or as a whole lease once the run uses none of its slots: after a
failed attempt, at the chunks' ends, at close, from an interrupt, and by the next run
after a kill -9. Never more slots held than the limit has, whoever holds them."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from prefect.client.orchestration import get_client

from evaluation.spec import HostSpec
from tasks.adapters.host_limits import size_limits
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.prefect_client import prefect_client
from tasks.adapters.slot_holders import HolderFile
from tasks.adapters.slot_registry import Registry
from tasks.adapters.slots_at_exit import give_back_on_exit
from tests.support.processes import python_against_api

pytestmark = pytest.mark.usefixtures("prefect_harness")

MODES = {"embedded": True, "shared": False}  # the registry's by_count


class _CountingWrites:
    """A Prefect client that notes how many slots each write whose method's name starts
    with ``counted`` asked for (by default those that take slots)."""

    def __init__(self, client, counted: str = "increment_concurrency_slots") -> None:
        self._client = client
        self._counted = counted
        self.asked: list[int] = []

    def __getattr__(self, name: str):
        call = getattr(self._client, name)
        if not name.startswith(self._counted):
            return call

        async def counted(*args, **kwargs):
            self.asked.append(kwargs["slots"])
            return await call(*args, **kwargs)

        return counted


async def _active(client, name: str) -> int:
    return (await client.read_global_concurrency_limit_by_name(name)).active_slots


def _listed(folder) -> list[str]:
    """Every slot the holder files in ``folder`` still list."""
    listed = []
    for path in folder.glob("*.holder"):
        reader = HolderFile(path, os.open(path, os.O_RDONLY))
        listed += [held.lease_id for held in reader.held()]
        reader.leave()
    return listed


@pytest.mark.parametrize("mode", MODES)
def test_reserve_takes_the_free_slots_in_one_write_and_gives_them_back_by_count(tmp_path, mode):
    """8 slots, another run holds 1: the 8 asked at once are refused, the 7 free are
    taken in the next write. A lane's slot given back after a failed attempt goes back
    at once by count on the embedded server; a lease of several goes back whole, once
    no slot of it is used, and its idle slots stay the run's meanwhile (no write)."""
    by_count = MODES[mode]
    host = HostSpec(f"grant-{mode}", f"http://grant-{mode}", slots=8)
    registry = Registry(tmp_path / "holders", by_count=by_count)

    async def main() -> dict[str, object]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            name = names[host.name]
            other = HostSlots(client, names, timeout_s=30)
            other_slot = await other.take(host.name)
            counting = _CountingWrites(writer)
            slots = HostSlots(counting, names, timeout_s=5, registry=registry)
            await slots.join()
            await slots.reserve((host,))
            seen: dict[str, object] = {"asked": list(counting.asked)}
            seen["reserved"] = (await _active(client, name), slots.held(host.name))
            assert len(_listed(registry.folder)) == 7

            lanes = [slots.lane(host.name) for _ in range(7)]
            for lane in lanes:
                async with lane.attempt():
                    pass
            seen["lanes took parked slots"] = counting.asked == seen["asked"]
            with pytest.raises(RuntimeError):
                async with lanes[0].attempt():
                    raise RuntimeError("attempt failed")
            seen["after a failed attempt"] = (await _active(client, name), slots.held(host.name))
            async with lanes[0].attempt():  # again: a slot of the run's, or a new one
                pass
            for lane in lanes:
                await lane.release()
            seen["all given back"] = await _active(client, name)
            await slots.close()
            seen["closed"] = (await _active(client, name), _listed(registry.folder))
            await other.release(other_slot)
            return seen

    seen = asyncio.run(main())
    assert seen["asked"] == [8, 7]
    assert seen["reserved"] == (8, 7)
    assert seen["lanes took parked slots"]
    if by_count:
        assert seen["after a failed attempt"] == (7, 6)  # given back at once, by count
    else:
        assert seen["after a failed attempt"] == (8, 7)  # kept, parked for the run
    assert seen["all given back"] == 1  # the other run's
    assert seen["closed"] == (1, [])


@pytest.mark.parametrize("mode", MODES)
def test_runs_reserving_together_never_hold_more_than_the_limit(tmp_path, mode):
    host = HostSpec(f"together-{mode}", f"http://together-{mode}", slots=6)
    registry = Registry(tmp_path / "holders", by_count=MODES[mode])

    async def main() -> tuple[list[int], int, int]:
        async with get_client() as client:
            names = await size_limits(client, (host,))
            writers = [prefect_client() for _ in range(3)]
            runs = []
            for writer in writers:
                run = HostSlots(await writer.__aenter__(), names, timeout_s=5, registry=registry)
                await run.join()
                runs.append(run)
            await asyncio.gather(*(run.reserve((host,)) for run in runs))
            held = [run.held(host.name) for run in runs]
            active = await _active(client, names[host.name])
            for run in runs:
                await run.close()
            after = await _active(client, names[host.name])
            for writer in writers:
                await writer.__aexit__(None, None, None)
            return held, active, after

    held, active, after = asyncio.run(main())
    assert sum(held) == active == 6 and max(held) >= 2  # all taken, none twice
    assert after == 0


@pytest.mark.parametrize("mode", MODES)
def test_an_interrupt_gives_back_a_reserved_grant_once(tmp_path, mode):
    """Ctrl-C: the interrupt's thread gives back what the run's file lists, in one
    write; the run's loop, still running meanwhile, gives none of it back again (a
    count given back twice would free the slot another run holds)."""
    host = HostSpec(f"interrupt-{mode}", f"http://interrupt-{mode}", slots=6)
    registry = Registry(tmp_path / "holders", by_count=MODES[mode])

    async def main() -> tuple[int, int, int, list]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            other = HostSlots(client, names, timeout_s=30)
            other_slot = await other.take(host.name)
            slots = HostSlots(writer, names, timeout_s=5, registry=registry)
            await slots.join()
            await slots.reserve((host,))
            lane = slots.lane(host.name)
            async with lane.attempt():  # a lane's request in flight at the Ctrl-C
                before = await _active(client, names[host.name])
                freed = await asyncio.to_thread(give_back_on_exit)
            await lane.release()  # the loop goes on: its lane ends, the phase closes
            await slots.close()
            after = await _active(client, names[host.name])
            listed = _listed(registry.folder)
            await other.release(other_slot)
            return before, freed, after, listed

    assert asyncio.run(main()) == (6, 5, 1, [])  # 1: the other run's slot


def _reserve_then_wait(api_url: str, limit: str, slots: int, folder) -> subprocess.Popen:
    """Another evalflow process that reserves ``slots`` slots of ``limit`` (the
    embedded server's registry: by count) and one lane's, then waits to be killed."""
    code = (
        "import asyncio\n"
        "from pathlib import Path\n"
        "from evaluation.spec import HostSpec\n"
        "from tasks.adapters.host_slots import HostSlots\n"
        "from tasks.adapters.prefect_client import prefect_client\n"
        "from tasks.adapters.slot_registry import Registry\n"
        "async def main():\n"
        "    async with prefect_client() as client:\n"
        f"        registry = Registry(Path({str(folder)!r}), by_count=True)\n"
        f"        slots = HostSlots(client, {{'h': {limit!r}}}, timeout_s=10, registry=registry)\n"
        "        await slots.join()\n"
        f"        await slots.reserve((HostSpec('h', 'http://h', {slots}),))\n"
        "        await slots.take('h')\n"
        "        print('held', flush=True)\n"
        "        await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    return python_against_api(code, api_url)


def test_a_killed_runs_reserved_slots_are_given_back_by_count_by_the_next_run(tmp_path):
    host = HostSpec("killed-grant-host", "http://killed-grant-host", slots=4)
    registry = Registry(tmp_path / "holders", by_count=True)

    async def main(started: list[subprocess.Popen]) -> tuple[int, int, list]:
        async with get_client() as client, prefect_client() as writer:
            name = (await size_limits(client, (host,)))[host.name]
            other = _reserve_then_wait(str(client.api_url), name, 4, registry.folder)
            started.append(other)
            line = await asyncio.to_thread(other.stdout.readline)
            assert line.strip() == b"held", line + other.stdout.read()
            held = await _active(client, name)
            other.kill()
            other.wait()
            slots = HostSlots(writer, {host.name: name}, timeout_s=5, registry=registry)
            await slots.join()  # finds the dead run's file: 4 slots back in one write
            after = await _active(client, name)
            await slots.close()
            return held, after, _listed(registry.folder)

    started: list[subprocess.Popen] = []
    try:
        assert asyncio.run(main(started)) == (4, 0, [])
    finally:
        for process in started:
            process.kill()
            process.wait()
            process.stdout.close()


def test_slots_given_back_together_by_count_go_in_few_writes(tmp_path):
    """32 lanes' slots given back at once (their work ran out together) on the embedded
    server: the first goes in a write of its own and those given back while it waits or
    is under way go together in the next, not a write each (1,024 lanes on a 64-slot
    host wrote ~1,000 give-backs in a row, ~50 s, and a lane needing a slot waited
    behind them); the limit's count ends at 0 all the same."""
    host = HostSpec("together-back", "http://together-back", slots=32)
    registry = Registry(tmp_path / "holders", by_count=True)

    async def main() -> tuple[list[int], int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            counting = _CountingWrites(writer, "release_concurrency_slots")
            slots = HostSlots(counting, names, timeout_s=5, registry=registry)
            await slots.join()
            await slots.reserve((host,))
            leases = [await slots.take(host.name) for _ in range(32)]
            await asyncio.gather(*(slots.release(lease) for lease in leases))
            active = await _active(client, names[host.name])
            await slots.close()
            return counting.asked, active

    given, active = asyncio.run(main())
    assert sum(given) == 32 and active == 0
    assert len(given) <= 2, given


def test_lanes_asking_together_for_slots_by_count_take_them_in_few_writes(tmp_path):
    """32 lanes asking at once for a slot of a limit with none parked (as when the slots
    reserved for them went back before they started: ``RESERVE_HOLD_S``) on the
    embedded server: each took its slot in a write of its own, one at a time (1,024
    lanes on a 64-slot host: ~1,000 writes in a row, and under load the last failed
    after 120 s). Now the first asks in a write of its own and those asking while it
    waits for its turn join it: at most 2 writes, 32 distinct slots, the count 32,
    then 0."""
    host = HostSpec("together-take", "http://together-take", slots=32)
    registry = Registry(tmp_path / "holders", by_count=True)

    async def main() -> tuple[list[int], int, int, int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            counting = _CountingWrites(writer)
            slots = HostSlots(counting, names, timeout_s=5, registry=registry)
            await slots.join()
            leases = await asyncio.gather(*(slots.take(host.name) for _ in range(32)))
            held = await _active(client, names[host.name])
            await asyncio.gather(*(slots.release(lease) for lease in leases))
            await slots.close()
            distinct = len({lease.id for lease in leases})
            return counting.asked, held, distinct, await _active(client, names[host.name])

    asked, held, distinct, after = asyncio.run(main())
    assert sum(asked) == held == distinct == 32 and after == 0
    assert len(asked) <= 2, asked


def test_lanes_asking_together_for_more_slots_than_are_free_get_those_free_and_wait(tmp_path):
    """6 lanes asking at once for a slot of a 4-slot limit, 1 held by another run: the
    6 asked in one write are refused, the 3 free go to the first lanes in the next, and
    the other 3 wait (never more than the limit held) until slots come back."""
    host = HostSpec("together-full", "http://together-full", slots=4)
    registry = Registry(tmp_path / "holders", by_count=True)

    async def main() -> tuple[list[int], int, int, int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            other = HostSlots(writer, names, timeout_s=5, registry=registry)
            await other.join()
            theirs = await other.take(host.name)
            counting = _CountingWrites(writer)
            slots = HostSlots(counting, names, timeout_s=30, registry=registry)
            await slots.join()
            lanes = [asyncio.ensure_future(slots.take(host.name)) for _ in range(6)]
            while sum(lane.done() for lane in lanes) < 3:
                await asyncio.sleep(0.01)
            first = [lane for lane in lanes if lane.done()]
            taken = [lane.result() for lane in first]
            full = await _active(client, names[host.name])
            await other.release(theirs)
            for lease in taken:
                await slots.release(lease)
            for lease in await asyncio.gather(*(lane for lane in lanes if lane not in first)):
                await slots.release(lease)
            await slots.close()
            await other.close()
            return counting.asked, len(taken), full, await _active(client, names[host.name])

    asked, taken, full, after = asyncio.run(main())
    assert taken == 3 and full == 4 and after == 0
    assert asked[:2] == [6, 3], asked
