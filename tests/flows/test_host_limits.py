"""Per-host concurrency limits: created or resized by every run, even runs that start
at the same moment; lanes' slots handed over, renewed and given back; the slots of a run
that died given back by the runs still alive."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
from prefect.client.schemas.sorting import TaskRunSort
from prefect.exceptions import ObjectNotFound

from evaluation.spec import HostSpec
from flows.evaluate import evaluate
from tasks.adapters import host_slots, slots_at_exit
from tasks.adapters.host_limits import host_limit_name, size_limits
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.prefect_client import prefect_client
from tasks.adapters.slot_errors import SlotUnavailable
from tasks.adapters.slot_holders import HolderFile
from tasks.adapters.slot_registry import Registry
from tests.conftest import REPO
from tests.support.processes import python_against_api
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_runs_starting_together_both_size_the_limit_and_a_resize_applies():
    host = HostSpec("Race Host", "http://race-host:11434", slots=3)

    async def main() -> int:
        async with get_client() as a, get_client() as b:
            await asyncio.gather(
                size_limits(a, (host,)),
                size_limits(b, (host,)),
            )
            resized = HostSpec("Race Host", "http://race-host:11434", slots=5)
            names = await size_limits(a, (resized,))
            limit = await a.read_global_concurrency_limit_by_name(names["Race Host"])
            return limit.limit

    assert asyncio.run(main()) == 5
    assert host_limit_name(host) == "ollama-host-race-host-11434"


def test_a_lane_never_holds_more_than_one_slot_and_frees_it_on_failure():
    host = HostSpec("lane-host", "http://lane-host", slots=1)

    async def main() -> list[int]:
        async with get_client() as client:
            names = await size_limits(client, (host,))
            slots = HostSlots(client, names, timeout_s=5)
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
    host = HostSpec("handoff-host", "http://handoff-host", slots=1)

    async def main() -> list[int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            name = names["handoff-host"]
            slots = HostSlots(writer, names, timeout_s=1, handoff_s=0.3)
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


def test_reserve_takes_only_free_slots_keeps_them_past_the_handoff_and_close_gives_them_back():
    """Reserved slots wait for the lanes past a chunk's handoff (their task run takes
    seconds to start under load): giving them back and taking them again cost writes."""
    host = HostSpec("reserve-host", "http://reserve-host", slots=3)

    async def main() -> list[int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            name = names["reserve-host"]
            other_run = HostSlots(client, names, timeout_s=30)
            held = other_run.lane("reserve-host")
            async with held.attempt():  # another run holds one of the three slots
                pass
            slots = HostSlots(writer, names, timeout_s=1, handoff_s=0.05)
            await asyncio.wait_for(slots.reserve((host,)), timeout=5)  # never waits
            await asyncio.sleep(0.3)  # past the handoff: still kept
            seen = [await _active(client, name)]
            await slots.close()
            seen.append(await _active(client, name))
            await held.release()
            seen.append(await _active(client, name))
            return seen

    assert asyncio.run(main()) == [3, 1, 0]


def test_a_lane_kept_waiting_by_a_full_limit_gives_up_naming_it_and_its_watch_knows(caplog):
    """Other runs hold every slot: the lane's watch is told it waits (the run says the
    wait, once for all its lanes: tests/flows/test_slot_waits.py), then holds none once
    it gives up; the slots say nothing themselves (each lane, in each worker process,
    said its own wait: recheck R5)."""
    host = HostSpec("full-host", "http://full-host", slots=1)
    told: list[str] = []
    watch = SimpleNamespace(
        waits=lambda: told.append("waits"),
        holds=lambda: told.append("holds"),
        holds_none=lambda: told.append("none"),
    )

    async def main() -> None:
        async with get_client() as client:
            names = await size_limits(client, (host,))
            other_run = HostSlots(client, names, timeout_s=30)
            held = other_run.lane(host.name)
            async with held.attempt():  # another run holds the only slot
                pass
            waiting = HostSlots(client, names, timeout_s=2).lane(host.name, watch)
            try:
                with pytest.raises(SlotUnavailable, match="no slot of ollama-host-full-host-80"):
                    async with waiting.attempt():
                        pass
            finally:
                await held.release()

    with caplog.at_level("WARNING"):
        asyncio.run(main())
    assert told == ["waits", "none"]
    assert not [r for r in caplog.records if "waiting" in r.getMessage()]


def test_held_leases_are_renewed_and_a_lane_whose_lease_expired_takes_a_new_one(monkeypatch):
    monkeypatch.setattr(host_slots, "RENEW_EVERY_S", 0.2)
    host = HostSpec("renew-host", "http://renew-host", slots=2)

    async def main() -> tuple[int, int, int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            slots = HostSlots(writer, names, timeout_s=30)
            lane = slots.lane("renew-host")
            async with lane.attempt():
                pass
            held = lane._lease
            # The server forgets the lease (as when it expires): a renewal finds it gone.
            await client.release_concurrency_slots_with_lease(held.id)
            await asyncio.sleep(0.6)
            active_before = await _active(client, names["renew-host"])
            async with lane.attempt():  # takes a new slot instead of using a dead lease
                active_during = await _active(client, names["renew-host"])
            renewed = lane._lease.id != held.id
            await lane.release()
            await slots.close()
            return active_before, active_during, renewed

    assert asyncio.run(main()) == (0, 1, True)


def _count_calls(slots: HostSlots, method: str) -> list[object]:
    """What each call of ``slots``'s ``method`` returned, as it returns."""
    original, returned = getattr(slots, method), []

    async def counted(*args, **kwargs):
        returned.append(await original(*args, **kwargs))
        return returned[-1]

    setattr(slots, method, counted)
    return returned


def _take_slots_then_wait(api_url: str, limit: str, count: int) -> subprocess.Popen:
    """Another evalflow process holding ``count`` slots of ``limit`` until it is killed."""
    code = (
        "import asyncio, sys\n"
        "from tasks.adapters.host_slots import HostSlots\n"
        "from tasks.adapters.prefect_client import prefect_client\n"
        "async def main():\n"
        "    async with prefect_client() as client:\n"
        f"        slots = await HostSlots.open(client, {{'h': {limit!r}}}, timeout_s=10)\n"
        f"        for _ in range({count}):\n"
        "            await slots.take('h')\n"
        "        print('held', flush=True)\n"
        "        await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    return python_against_api(code, api_url)


def test_an_interrupted_run_gives_its_slots_back_before_it_exits(tmp_path):
    """After a clean Ctrl-C the resume logged "gave back 1 host slot(s) held by 1 dead
    run(s)": the interrupt exits the process (``os._exit``) without closing its slots."""
    host = HostSpec("interrupted-host", "http://interrupted-host", slots=2)
    registry = Registry(tmp_path / "holders")

    async def main() -> tuple[int, int, list]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            slots = HostSlots(writer, names, timeout_s=5, registry=registry)
            await slots.join()
            await slots.take(host.name)  # a lane's request in flight at the Ctrl-C
            before = await _active(client, names[host.name])
            freed = await asyncio.to_thread(slots_at_exit.give_back_on_exit)  # the interrupt
            after = await _active(client, names[host.name])
            (record,) = registry.folder.glob("*.holder")
            assert freed == 1
            reader = HolderFile(record, os.open(record, os.O_RDONLY))
            listed = reader.held()
            reader.leave()
            await slots.close()
            return before, after, listed

    assert asyncio.run(main()) == (1, 0, [])  # nothing left for the next run to give back


def test_a_slot_still_held_when_the_generation_phase_closes_is_given_back_on_interrupt(
    tmp_path,
):
    """A lane still held a slot when the phase closed its ``HostSlots``: the record was
    unlocked and dropped from the interrupt's list then, so a SIGTERM right after left
    the slot to the next run ("gave back 2 host slot(s) held by 1 dead run(s)", CI). Now
    the record stays listed until that lane gives the slot back, and then it is closed."""
    host = HostSpec("closing-host", "http://closing-host", slots=2)
    registry = Registry(tmp_path / "holders")

    async def main() -> tuple[int, int, bool, list]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            slots = HostSlots(writer, names, timeout_s=5, registry=registry)
            await slots.join()
            record = slots._record
            first = await slots.take(host.name)  # a lane's, still held at close
            await slots.close()
            freed = await asyncio.to_thread(slots_at_exit.give_back_on_exit)  # the interrupt
            after = await _active(client, names[host.name])
            await slots.release(first)  # the lane ends: the record goes
            listed = record in slots_at_exit._OPEN_RECORDS
            return freed, after, listed, list(registry.folder.glob("*.holder"))

    freed, after, still_listed, records = asyncio.run(main())
    assert (freed, after) == (1, 0)
    assert not still_listed and records == []


def test_a_run_waiting_for_slots_gives_back_those_of_a_run_that_was_killed(monkeypatch):
    # Polled and scanned for dead holders every 0.1 s rather than every 1 and 2 s.
    monkeypatch.setattr(host_slots, "MAX_POLL_S", 0.1)
    monkeypatch.setattr(host_slots, "RECLAIM_EVERY_S", 0.1)
    host = HostSpec("dead-holder-host", "http://dead-holder-host", slots=2)

    async def main(holder: subprocess.Popen) -> float:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            other = _take_slots_then_wait(str(client.api_url), names[host.name], 2)
            holder.append(other)
            line = await asyncio.to_thread(other.stdout.readline)
            assert line.strip() == b"held", line + other.stdout.read()
            assert await _active(client, names[host.name]) == 2
            slots = await HostSlots.open(writer, names, timeout_s=30)
            scans = _count_calls(slots, "_give_back_dead")
            waiting = asyncio.create_task(slots.take(host.name))
            while len(scans) < 3 and not waiting.done():  # it looked for dead holders 3 times
                await asyncio.sleep(0.05)
            # the live holder's slots are not taken from it
            assert not waiting.done() and scans[:3] == [0, 0, 0]
            other.kill()
            other.wait()
            killed = time.perf_counter()
            lease = await waiting
            waited = time.perf_counter() - killed
            assert await _active(client, names[host.name]) == 1
            await slots.release(lease)
            await slots.close()
            return waited

    started: list[subprocess.Popen] = []
    try:
        waited = asyncio.run(main(started))
    finally:
        for process in started:
            process.kill()
            process.wait()
            process.stdout.close()
    assert waited < 5  # the lease would have kept the slot for 60-75 s


def test_on_the_embedded_server_dead_runs_slots_are_given_back_by_count_and_zeroed_when_alone(
    tmp_path,
):
    """Leases live in each process's own embedded API server, so a dead run's slots are
    given back by count; a run alone there zeroes the counter (a slot taken by a request
    the kill cut short is listed nowhere)."""
    host = HostSpec("embedded-host", "http://embedded-host", slots=4)
    registry = Registry(tmp_path / "holders", by_count=True, zero_when_alone=True)

    def dead_run(*leases: str) -> None:
        record = HolderFile.create(registry.folder, "a run that died")
        for lease in leases:
            record.took(lease, host_limit_name(host))
        record.leave()  # unlocked, as the kernel does when a process dies

    async def joined(live_other: bool) -> tuple[int, list]:
        async with get_client() as client, prefect_client() as writer:
            name = (await size_limits(client, (host,)))[host.name]
            await client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(active_slots=3)
            )
            other = HolderFile.create(registry.folder, "a live run") if live_other else None
            slots = HostSlots(writer, {host.name: name}, timeout_s=1, registry=registry)
            await slots.join()
            active = await _active(client, name)
            await slots.close()
            if other is not None:
                other.close()
            return active, sorted(p.name for p in registry.folder.glob("*.holder"))

    dead_run(str(uuid.uuid4()), str(uuid.uuid4()))
    assert asyncio.run(joined(live_other=True)) == (1, [])  # 3 - the dead run's 2
    dead_run(str(uuid.uuid4()))
    assert asyncio.run(joined(live_other=False)) == (0, [])  # alone: zeroed


class _SlowSlotWrites:
    """A Prefect client whose slot grants reach the server at once but are answered
    ``delay_s`` later, and whose give-backs wait ``delay_s`` before they are sent (as
    behind other writes): a lane cancelled meanwhile never sees either finish."""

    def __init__(self, client, delay_s: float) -> None:
        self._client = client
        self._delay_s = delay_s

    def __getattr__(self, name: str):
        call = getattr(self._client, name)

        async def answered_late(*args, **kwargs):
            response = await call(*args, **kwargs)
            await asyncio.sleep(self._delay_s)
            return response

        async def sent_late(*args, **kwargs):
            await asyncio.sleep(self._delay_s)
            return await call(*args, **kwargs)

        if name == "increment_concurrency_slots_with_lease":
            return answered_late
        if name == "release_concurrency_slots_with_lease":
            return sent_late
        return call


def test_a_lane_cancelled_while_its_slot_write_is_under_way_leaves_no_slot_taken():
    """A cancelled run (the UI's Cancel, a race stopped mid-round) cancels its lanes
    wherever they are. A slot the server granted after the lane stopped waiting, and a
    give-back the lane stopped waiting for, must still end given back: on a server
    without lease expiry (Prefect's test harness) a lost slot stays taken for good, and
    the next run on that host waits for it until its timeout."""
    granted_late = HostSpec("granted-late-host", "http://granted-late-host", slots=1)
    given_back_late = HostSpec("given-back-late-host", "http://given-back-late-host", slots=1)

    async def main() -> list[int]:
        async with get_client() as client:
            names = await size_limits(client, (granted_late, given_back_late))
            slots = HostSlots(_SlowSlotWrites(client, 0.3), names, timeout_s=5, handoff_s=0.2)
            taking = asyncio.create_task(slots.lane(granted_late.name).attempt().__aenter__())
            await asyncio.sleep(0.15)  # granted on the server, the answer not yet read
            taking.cancel()

            lane = slots.lane(given_back_late.name)
            failing = asyncio.create_task(_attempt_that_fails_when_cancelled(lane))
            while await _active(client, names[given_back_late.name]) == 0:
                await asyncio.sleep(0.05)  # until it holds its slot, in its request
            failing.cancel()
            await asyncio.sleep(0.05)  # giving it back, the write not yet sent
            failing.cancel()  # cancelled again (anyio cancels until the scope exits)
            await asyncio.gather(taking, failing, return_exceptions=True)
            await slots.close()
            return [await _active(client, names[h.name]) for h in (granted_late, given_back_late)]

    assert asyncio.run(main()) == [0, 0]


async def _attempt_that_fails_when_cancelled(lane) -> None:
    async with lane.attempt():
        await asyncio.sleep(60)


def test_generation_task_runs_carry_the_host_tag_and_no_tag_limit_is_made(tmp_path):
    """The design's GPU-tagged generation, without a ``tag:`` concurrency limit (which
    would hold a slot for a whole chunk, retry waits included)."""
    config = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=1.0)
    with running_standin(config) as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "tag-test",
                    "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                    "models": ["llama3.2:3b"],
                    "grid": {"temperature": [0.0], "num_predict": [8]},
                    "hosts": [{"name": "tag-host", "url": server.url, "slots": 2}],
                }
            )
        )
        summary = asyncio.run(
            evaluate(spec_path=str(spec), database=f"sqlite:///{tmp_path / 'r.db'}")
        )

    async def chunk_tags() -> tuple[list[list[str]], bool]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="generate tag-host")),
                sort=TaskRunSort.EXPECTED_START_TIME_DESC,  # null is refused (422)
                limit=100,
                offset=0,
            )
            try:
                await client.read_global_concurrency_limit_by_name("tag:gpu:tag-host")
                tag_limit = True
            except ObjectNotFound:
                tag_limit = False
        return [r.tags for r in runs], tag_limit

    tags, tag_limit = asyncio.run(chunk_tags())
    assert summary["generated"] == 36
    assert tags and all(t == ["gpu:tag-host"] for t in tags), tags
    assert not tag_limit


def test_two_servers_one_name_have_a_limit_each_and_the_second_run_is_told(tmp_path, caplog):
    """Every doc example names its host `llama-cpp`: two runs naming two servers so took
    turns on one limit (a 600 s wait, then `SlotUnavailable`). Each server now has its
    own limit and slots, and a run joining while another uses the name for another
    server says so, once (the third run, on the first's server, is told of the second)."""
    first = HostSpec("llama-cpp", "http://127.0.0.1:18431", slots=1)
    second = HostSpec("llama-cpp", "http://127.0.0.1:18432", slots=1)
    same = HostSpec("llama-cpp", "http://127.0.0.1:18431/", slots=1)
    registry = Registry(tmp_path / "holders")

    async def main() -> None:
        async with get_client() as client:
            runs = []
            for host in (first, second, same):
                names = await size_limits(client, (host,))
                run = HostSlots(client, names, timeout_s=2, registry=registry)
                await run.join()
                runs.append(run)
            first_lease = await runs[0].take("llama-cpp")
            second_lease = await runs[1].take("llama-cpp")  # not kept waiting by the first
            for run, lease in ((runs[0], first_lease), (runs[1], second_lease)):
                await run.release(lease)
            for run in runs:
                await run.close()

    with caplog.at_level("WARNING", logger="evalflow.host_slots"):
        asyncio.run(main())
    assert host_limit_name(first) == host_limit_name(same) == "ollama-host-127.0.0.1-18431"
    assert host_limit_name(second) == "ollama-host-127.0.0.1-18432"
    said = [r.getMessage() for r in caplog.records if "another server" in r.getMessage()]
    line = (
        "host 'llama-cpp' here (limit ollama-host-127.0.0.1-{}) is another server than "
        "the 'llama-cpp' of a running run (limit ollama-host-127.0.0.1-{}): each has its "
        "own slots; give them different names"
    )
    assert said == [line.format(18432, 18431), line.format(18431, 18432)]


class _RecordingLeases:
    """A Prefect client that notes every slot write the server took: the lease length of
    a lease, ``count`` for slots counted without one. A write the server answered 503
    (SQLite busy under load; ``prefect_client``'s transport sends it again) is
    not noted: the full suite once saw ``["count", "count"]`` from such a retry."""

    def __init__(self, client) -> None:
        self._client = client
        self.writes: list[float | str] = []

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    async def _noted(self, what: float | str, write):
        taken = await write
        self.writes.append(what)
        return taken

    async def increment_concurrency_slots_with_lease(self, *args, **kwargs):
        write = self._client.increment_concurrency_slots_with_lease(*args, **kwargs)
        return await self._noted(kwargs["lease_duration"], write)

    async def increment_concurrency_slots(self, *args, **kwargs):
        return await self._noted("count", self._client.increment_concurrency_slots(*args, **kwargs))

    async def renew_concurrency_lease(self, *args, **kwargs):
        return await self._noted("renew", self._client.renew_concurrency_lease(*args, **kwargs))


@pytest.mark.parametrize("embedded", [True, False])
def test_slots_are_leased_only_on_a_server_that_outlives_its_runs(tmp_path, monkeypatch, embedded):
    """On a command's embedded server (slots of dead runs given back by count) a slot is
    a count, with no lease to renew: a lease there bought nothing and cost a renewal
    write per slot (17 a second at 256 slots, on the SQLite database every slot write
    shares). On a shared server the shortest lease, renewed, so a dead run's slots
    expire."""
    monkeypatch.setattr(host_slots, "RENEW_EVERY_S", 0.1)
    host = HostSpec(f"lease-host-{embedded}", f"http://lease-host-{embedded}", slots=2)
    registry = Registry(tmp_path / "holders", by_count=embedded)
    monkeypatch.setattr(host_slots, "registry_for", lambda client: registry)

    async def main() -> tuple[list, int]:
        async with get_client() as client, prefect_client() as writer:
            names = await size_limits(client, (host,))
            recording = _RecordingLeases(writer)
            slots = await HostSlots.open(recording, names, timeout_s=30)
            lane = slots.lane(host.name)
            async with lane.attempt():
                await asyncio.sleep(0.3)
            await lane.release()
            await slots.close()
            return recording.writes, await _active(client, names[host.name])

    writes, active = asyncio.run(main())
    assert active == 0
    if embedded:
        assert writes == ["count"]
    else:
        assert writes[0] == host_slots.LEASE_S and set(writes[1:]) == {"renew"}
