"""A host's slots across processes on one machine (evaluation/backends/_machine_slots.py):
flock'd files per slot, free again when their process dies."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys

import pytest

from evaluation.backends._machine_slots import LOCK_DIR_ENV, MachineSlots, host_key

URL = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def _own_lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))


def test_a_host_is_known_by_scheme_host_and_port():
    assert host_key("http://Box:11434/") == host_key("http://box:11434") == "http://box:11434"
    assert host_key("http://box") == "http://box:80" != host_key("https://box")


def test_holders_in_two_places_never_exceed_the_slots():
    """Two MachineSlots of one URL: as two processes (each its own open files)."""
    a, b = MachineSlots(URL, 2), MachineSlots(URL, 2)
    open_now = peak = 0

    async def call(slots: MachineSlots) -> None:
        nonlocal open_now, peak
        async with slots.hold():
            open_now += 1
            peak = max(peak, open_now)
            await asyncio.sleep(0.05)
            open_now -= 1

    async def main() -> None:
        await asyncio.gather(*(call(s) for s in (a, b) * 4))

    asyncio.run(main())
    a.close()
    b.close()
    assert peak == 2


HOLDER = """
import asyncio, sys
from evaluation.backends._machine_slots import MachineSlots

async def main():
    slots = MachineSlots(sys.argv[1], 1)
    async with slots.hold():
        print("held", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


def test_a_slot_held_by_a_killed_process_is_free_at_once():
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, URL], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        slots = MachineSlots(URL, 1)

        async def try_hold() -> bool:
            try:
                async with asyncio.timeout(0.3):
                    async with slots.hold():
                        return True
            except TimeoutError:
                return False

        assert asyncio.run(try_hold()) is False  # the other process holds the only slot
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert asyncio.run(try_hold()) is True
        slots.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_take_goes_round_to_the_one_free_slot_and_starts_anywhere():
    """The search starts at a random slot (runs do not all queue on slot 0) and goes
    round: with every slot but one held by another process, that one is taken."""
    mine, other = MachineSlots(URL, 8), MachineSlots(URL, 8)
    found, firsts = [], set()

    async def main() -> None:
        for free in range(8):
            held = [fd for i, fd in enumerate(other._fds) if i != free]
            for fd in held:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            async with mine.hold():
                found.extend(mine._held)
            for fd in held:
                fcntl.flock(fd, fcntl.LOCK_UN)
        for _ in range(40):  # all free: where a process's first take starts
            fresh = MachineSlots(URL, 8)
            async with fresh.hold():
                firsts.update(fresh._held)
            fresh.close()

    asyncio.run(main())
    mine.close()
    other.close()
    assert found == list(range(8))
    assert len(firsts) > 1


def test_a_take_tries_the_slot_given_back_last_first(monkeypatch):
    """Before the random search: most often that slot is still free, where the search
    met the other lane workers' slots first (7-8 tries a take at 4 workers x 16 of 64
    slots). Taken meanwhile by another process, the search goes on as before."""
    import evaluation.backends._machine_slots as machine_slots

    mine, other = MachineSlots(URL, 8), MachineSlots(URL, 8)
    taken = []

    async def take() -> None:
        before = set(mine._held)
        async with mine.hold():
            taken.append(*(mine._held - before))
            await asyncio.sleep(0.01)

    async def main() -> None:
        monkeypatch.setattr(machine_slots.random, "randrange", lambda n: 3)
        await take()  # the search: slot 3
        monkeypatch.setattr(machine_slots.random, "randrange", lambda n: 6)
        await take()  # slot 3 again, not the search's 6
        fcntl.flock(other._fds[3], fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process's now
        await take()  # the search's 6
        await asyncio.gather(take(), take())  # 6 given back: one gets it, one searches (7)

    asyncio.run(main())
    mine.close()
    other.close()
    assert taken == [3, 3, 6, 6, 7]


def test_the_slots_held_are_read_back_without_taking_one(tmp_path):
    """From the kernel's lock list: a reader never makes a run wait; no such list (not
    Linux) is 'not measured', not 0 in flight."""
    from evaluation.backends._machine_slots import machine_slot_readings

    slots = MachineSlots(URL, 3)

    async def read_while_two_are_held() -> list:
        async with slots.hold(), slots.hold():
            return machine_slot_readings()

    assert asyncio.run(read_while_two_are_held()) == [("ollama-host-127.0.0.1-9", 3, 2)]
    assert machine_slot_readings() == [("ollama-host-127.0.0.1-9", 3, 0)]
    assert machine_slot_readings(tmp_path / "no-such-file") is None
    slots.close()
