"""A lane worker keeps its seats' host slots between chunks (``tasks.lane_workers``): its
next chunk comes from the run's process, which under load sent it seconds after the last
one ended there; a slot given back meanwhile cost two writes to the Prefect server, one
at a time per process, and the lanes waiting behind them left a 256-slot host at 99 open.
Counted on a clock moved by hand: no wait, nothing timed."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

from evaluation.spec import HostSpec
from tasks import lane_workers
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_api import SlotApiSettings
from tasks.adapters.slot_registry import Registry

HOST = HostSpec("h", "http://h", slots=4)


class _Clock(asyncio.SelectorEventLoop):
    """An event loop whose clock can be moved forward (timers due then run)."""

    def __init__(self) -> None:
        super().__init__()
        self.moved = 0.0

    def time(self) -> float:
        return super().time() + self.moved

    async def later(self, seconds: float) -> None:
        """``seconds`` from now, once what is ready has run (timers set, writes done)."""
        for _ in range(5):
            await asyncio.sleep(0)
        self.moved += seconds
        for _ in range(20):
            await asyncio.sleep(0)


class _Response:
    def __init__(self, body: object) -> None:
        self._body = body

    def json(self) -> object:
        return self._body


class _SlotWrites:
    """The embedded server's slot API (by count), each write noted."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, int]] = []

    async def increment_concurrency_slots(self, names, slots, mode):
        self.writes.append(("take", slots))
        return _Response([{"name": names[0]}])

    async def release_concurrency_slots(self, names, slots, occupancy_seconds):
        self.writes.append(("give back", slots))
        return _Response([])


def test_a_lane_workers_slot_waits_for_its_next_chunk_however_late_it_comes(monkeypatch, tmp_path):
    writes = _SlotWrites()
    opened: list[HostSlots] = []

    async def fake_open(client, limit_names, registry, **kwargs) -> HostSlots:
        assert registry == Registry(tmp_path, by_count=True)  # the run's, as it found it
        slots = HostSlots(writes, limit_names, registry=registry, **kwargs)
        opened.append(slots)
        return slots

    monkeypatch.setattr(HostSlots, "open", staticmethod(fake_open))
    monkeypatch.setattr(lane_workers, "SlotApi", contextlib.nullcontext)
    monkeypatch.setattr(lane_workers, "open_backends", lambda sweep, **_: {})
    limits = SimpleNamespace(first_request_timeout_s=5.0, max_attempts=1)
    sweep = SimpleNamespace(spec=SimpleNamespace(limits=limits, hosts=(HOST,)), suite=None)
    api = SlotApiSettings("http://prefect.invalid/api")
    registry = Registry(tmp_path, by_count=True)
    plan = lane_workers.LanePlan(sweep, {HOST.name: "limit-h"}, 1.0, api, registry)  # type: ignore[arg-type]
    loop = _Clock()

    async def chunks() -> tuple[list, list]:
        async with lane_workers.open_lanes(plan, {HOST.name: 2}):  # 2 seats of 4 slots
            (slots,) = opened
            reserved = list(writes.writes)
            for _ in range(3):  # a chunk, then the next a minute later, on each seat
                lanes = [slots.lane(HOST.name) for _ in range(2)]
                for lane in lanes:
                    async with lane.attempt():
                        pass
                for lane in lanes:
                    lane.finish()
                await loop.later(60.0)  # past the handoff, and the reserve's hold
            between = writes.writes[len(reserved) :]
        return reserved, between

    try:
        reserved, between = loop.run_until_complete(chunks())
    finally:
        loop.close()
    assert reserved == [("take", 2)]  # its share, in one write
    assert between == []  # no slot given back and taken again between chunks
    assert sum(n for kind, n in writes.writes if kind == "give back") == 2  # at its close
