"""A run whose lanes wait for slots another run holds (recheck R5 of stop 72): it said
"waiting N s for a free slot" once per lane (8 lines for one host), and warned of "no
answer from host … a hung or overloaded server?" while the host answered in 100 ms (a
chunk's request counted as sent when the chunk started, before its lane held a slot).
Now the lanes tell the run: one line per host naming who holds its slots, requests in
flight only while a lane holds one. On the test server's real limits; the run's clock
is moved by hand, and each step waits for the state it needs, not for a time."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy.engine import Engine

from evaluation.monitor import LiveRun
from evaluation.spec import HostSpec
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import RunLive
from tasks.adapters.host_limits import size_limits
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.slot_holders import Held, HolderFile
from tests.support.lane_runner import until

pytestmark = pytest.mark.usefixtures("prefect_harness")

NIGHTLY = "'nightly' (process 11 on box)"
MINE = "'mine' (process 22 on box)"


def _row(engine: Engine, live: LiveRun) -> RunLive:
    live.write()
    with session_scope(engine) as session:
        row = session.get(RunLive, live.experiment)
        session.expunge(row)
        return row


async def _another_run_holding_both(client, names, host: HostSpec):
    """'nightly' holding both slots of ``host``: its HostSlots and its lanes."""
    other = await HostSlots.open(client, names, timeout_s=30, label=NIGHTLY)
    theirs = [other.lane(host.name) for _ in range(2)]
    for lane in theirs:
        async with lane.attempt():
            pass
    return other, theirs


def test_a_run_waiting_for_another_runs_slots_says_so_once_naming_it_and_no_hung_host(tmp_path):
    host = HostSpec("busy", f"http://busy-{uuid.uuid4().hex[:8]}", slots=2)
    engine = make_engine(f"sqlite:///{tmp_path / 'results.db'}")
    now, said = [0.0], []

    async def main() -> None:
        async with get_client() as client:
            names = await size_limits(client, (host,))
            other, theirs = await _another_run_holding_both(client, names, host)
            mine = await HostSlots.open(
                client, names, timeout_s=600, capacity={host.name: 2}, label=MINE
            )
            live = LiveRun(
                engine, "mine", total=2, slots={host.name: 2}, clock=lambda: now[0],
                say=said.append, whose=mine.holders, slot_timeout_s=600, quiet_after_s=30,
            )  # fmt: skip
            answer = asyncio.Event()

            async def chunk() -> None:
                with live.lane(host.name) as watch:
                    lane = mine.lane(host.name, watch)
                    async with lane.attempt():
                        await answer.wait()  # the host answers
                    lane.finish()

            lanes = [asyncio.create_task(chunk()) for _ in range(2)]
            await until(lambda: mine.lanes_waiting(host.name) == 2)
            assert _row(engine, live).waiting == {}  # a moment's wait is not shown (M2)
            now[0] = 10.0
            row = _row(engine, live)
            assert row.waiting[host.name]["lanes"] == 2
            assert row.in_flight == {}  # nothing sent: both lanes wait
            assert row.waiting[host.name]["held_by"] == [[NIGHTLY, 2]]
            now[0] = 29.0
            live.tick()
            assert said == []
            now[0] = 31.0
            live.tick()
            now[0] = 300.0  # long past the silence that means a hung host
            live.tick()
            assert said == [
                f"2 lanes waiting 31 s so far for a free slot of host 'busy' (held by another "
                f"run: {NIGHTLY}, 2 of its 2); runs on this machine take turns: a run hands a "
                "slot over between its requests once it has held it 5 s; each gives up after "
                "10 min of waiting with no other run on this machine using the host"
            ]
            for lane in theirs:  # the other run is done with them
                await lane.release()
            await until(lambda: live.in_flight[host.name] == 2)
            assert _row(engine, live).waiting == {}
            now[0] = 320.0
            live.tick()
            assert len(said) == 1  # 20 s since they were sent
            now[0] = 331.0
            live.tick()  # sent and unanswered for 31 s: now said
            assert len(said) == 2
            assert said[1].startswith("no answer from host 'busy' for 31 s (2 requests wait;")
            answer.set()
            await asyncio.gather(*lanes)
            assert live.in_flight[host.name] == 0
            await mine.close()
            await other.close()

    asyncio.run(main())


def test_holders_are_named_by_their_runs_label_a_runs_workers_counted_as_it(tmp_path):
    """A run's lane workers each keep a holder file under the run's label; the run
    waiting leaves its own files out; a file an older evalflow wrote is named by its
    process."""
    from tasks.adapters.slot_holders import holders_of

    files = [
        HolderFile.create(tmp_path, f"pid={pid} host=box flow_run=- run={label}")
        for pid, label in ((11, NIGHTLY), (12, NIGHTLY), (22, MINE))
    ]
    files.append(HolderFile.create(tmp_path, "pid=33 host=old flow_run=-"))
    for record, taken in zip(files, (2, 1, 1, 1), strict=True):
        stem = record.path.stem
        slots = [Held(f"{stem}/{i}", "limit-a") for i in range(taken)]
        record.took_all([*slots, Held(f"{stem}-b", "limit-b")])
    files[1].giving_back(f"{files[1].path.stem}/0")  # given back: not held
    assert holders_of(tmp_path, "limit-a", besides=MINE) == [
        (NIGHTLY, 2),
        ("a run (process 33 on old)", 1),
    ]
    for record in files:
        record.close()


def test_lanes_waiting_for_another_runs_slots_are_not_in_flight_and_park_on_a_stop(monkeypatch):
    """Ctrl-C while the lanes waited for another run's slots said "waiting up to 5 s for
        the 2 request(s) in flight" with none on the wire and waited them out (~6 s): a lane
        waiting in ``HostSlots`` counted as in flight, and the stop left it polling. Now the
        wait is not counted, and the stop parks the waiting lanes (no slot is asked after it,
    and their wait's mark is removed: no other run hands them a slot, ``slot_turns``)."""
    from evaluation.backends import _sending
    from evaluation.run._in_flight import case_in_flight, cases_in_flight
    from tasks.adapters import host_slots

    monkeypatch.setattr(_sending, "_SENDING_STOPPED", threading.Event())
    monkeypatch.setattr(_sending, "_STOP_LISTENERS", [])
    parked: list[str] = []

    async def park_here() -> None:
        parked.append("lane")
        await asyncio.Event().wait()

    monkeypatch.setattr(host_slots, "park", park_here)
    host = HostSpec("busy", f"http://busy-{uuid.uuid4().hex[:8]}", slots=2)

    async def main() -> None:
        async with get_client() as client:
            names = await size_limits(client, (host,))
            other, theirs = await _another_run_holding_both(client, names, host)
            mine = await HostSlots.open(client, names, timeout_s=600, label=MINE)

            async def case() -> None:
                async with case_in_flight(), mine.lane(host.name).attempt():
                    raise AssertionError("a slot was taken after the stop")

            lanes = [asyncio.create_task(case()) for _ in range(2)]
            await until(lambda: mine.lanes_waiting(host.name) == 2)
            assert cases_in_flight() == 0  # both wait for a slot: nothing on the wire
            marks = mine.registry.folder / "turns" / names[host.name]
            await until(lambda: list(marks.glob("*.wait")))  # 'nightly' hands one over
            threading.Thread(target=_sending.stop_sending).start()
            await until(lambda: parked == ["lane", "lane"])
            assert list(marks.glob("*.wait")) == []  # parked: nobody hands one over
            for lane in theirs:  # given back now: the parked lanes take none
                await lane.release()
            assert mine.held(host.name) == 0 and not any(t.done() for t in lanes)
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            await mine.close()
            await other.close()

    asyncio.run(main())
