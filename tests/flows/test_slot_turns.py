"""Two runs on one host take turns with its slots (ncmon-9): a lane kept its slot from
request to request and chunk to chunk for its whole run, so a second run on a 1-slot
host found the limit full until the first ended, and each of its lanes gave up after
``first_request_timeout_s`` (10 generations failed ``SlotUnavailable``). Now a run
whose lanes wait marks it in the slot registry (``slot_turns``), the other run hands a
slot over between its requests once it has held it ``TURN_S`` (0 here), its lanes leave
the limit to the waiting run, and a lane waits past its timeout while another run on
this machine holds the host's slots. On the test server's real limits; each step waits
for the state it needs, not for a time."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prefect.client.orchestration import get_client

from evaluation.backends import OllamaBackend
from evaluation.backends.retry import RetryPolicy
from evaluation.run._chunk_run import GenerationContext, generate_once
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import load_suite
from tasks.adapters import host_slots
from tasks.adapters.host_limits import size_limits
from tasks.adapters.host_slots import HostSlots
from tasks.adapters.prefect_client import prefect_client
from tasks.adapters.slot_registry import Registry
from tests.conftest import REPO
from tests.support.lane_runner import until
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

MODES = {"embedded": True, "shared": False}  # the registry's by_count
SUITE = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")
MODEL = "llama3.2:3b"


class _Open:
    """The lanes holding a slot of the host, across both runs (each lane's ``watch``):
    how many now, the most at once, and who held one in turn."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.turns: list[str] = []

    def watch(self, run: str) -> _Watch:
        return _Watch(self, run)


class _Watch:
    def __init__(self, open_: _Open, run: str) -> None:
        self._open = open_
        self._run = run
        self._holds = False

    def waits(self) -> None: ...

    def holds(self) -> None:
        if not self._holds:
            self._holds = True
            self._open.now += 1
            self._open.most = max(self._open.most, self._open.now)
            if self._open.turns[-1:] != [self._run]:
                self._open.turns.append(self._run)

    def holds_none(self) -> None:
        if self._holds:
            self._holds = False
            self._open.now -= 1


async def _run(
    client, names, registry: Registry, label: str, timeout_s: float, slots: int = 1
) -> HostSlots:
    slots = HostSlots(
        client,
        names,
        timeout_s=timeout_s,
        registry=registry,
        capacity={name: slots for name in names},
        label=label,
    )
    await slots.join()
    return slots


async def _chunk(lane, holds: asyncio.Event, done: asyncio.Event) -> None:
    """A lane's chunk of one request, which holds its slot from ``holds`` to ``done``."""
    async with lane.attempt():
        holds.set()
        await done.wait()
    lane.finish()


async def _request(lane) -> None:
    async with lane.attempt():
        pass


async def _b_waits(
    b: HostSlots, host: HostSpec, open_: _Open, registry: Registry
) -> tuple[asyncio.Task, asyncio.Event, asyncio.Event]:
    """B's lane's chunk (``_chunk``), once it waits for a slot and has marked it."""
    holds, done = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(_chunk(b.lane(host.name, open_.watch("b")), holds, done))
    await until(lambda: len(_marks(registry)) == 1, 30)
    return task, holds, done


def _marks(registry: Registry) -> list[str]:
    return sorted(path.name for path in registry.folder.glob("turns/*/*.wait"))


@pytest.mark.parametrize("mode", MODES)
def test_a_waiting_run_takes_its_turn_on_a_one_slot_host(tmp_path, monkeypatch, mode):
    """A holds the host's one slot; B's lane waits (past its 0.2 s timeout: A is alive
    and listed) and marks its wait. A's lane's next request hands the slot over and
    waits; B's turn; then B's chunk ends while A waits, and the slot goes back to A.
    Never two lanes holding a slot of the host, nor the limit more than 1 active."""
    monkeypatch.setattr(host_slots, "TURN_S", 0.0)
    host = HostSpec("one", f"http://one-{uuid.uuid4().hex[:8]}", slots=1)
    registry = Registry(tmp_path / "holders", by_count=MODES[mode])
    open_ = _Open()

    async def main() -> None:
        async with get_client() as reader, prefect_client() as a_api, prefect_client() as b_api:
            names = await size_limits(reader, (host,))
            name = names[host.name]
            a = await _run(a_api, names, registry, "'a' (process 1 on box)", timeout_s=600)
            b = await _run(b_api, names, registry, "'b' (process 2 on box)", timeout_s=0.2)
            a_lane = a.lane(host.name, open_.watch("a"))
            await _request(a_lane)
            b_task, b_holds, b_done = await _b_waits(b, host, open_, registry)
            await asyncio.sleep(0.5)  # past B's timeout: A holds the slot, B still waits
            assert not b_task.done() and not b_holds.is_set()

            a_task = asyncio.create_task(_request(a_lane))
            await asyncio.wait_for(b_holds.wait(), 60)  # B's turn: A handed the slot over
            assert not a_task.done()
            assert (await reader.read_global_concurrency_limit_by_name(name)).active_slots == 1
            await until(lambda: len(_marks(registry)) == 1, 30)  # A's lane waits in turn
            b_done.set()
            await asyncio.wait_for(a_task, 60)  # B's chunk ended: A's turn again
            await b_task
            assert open_.turns == ["a", "b", "a"]
            a_lane.finish()
            await a.close()
            await b.close()
            assert (await reader.read_global_concurrency_limit_by_name(name)).active_slots == 0
            assert _marks(registry) == []

    asyncio.run(main())
    assert open_.most == 1


def test_a_lease_of_several_goes_back_whole_for_a_waiting_run(tmp_path, monkeypatch):
    """On a shared server A's two lanes hold a lease of 2 (``reserve``), which goes back
    only whole. B's lane waits: A's first lane hands its slot over at its next request,
    which parks it unused (not taken back by A's lanes while B waits) and gives nothing
    back yet; A's second lane's hand-over frees the lease, and B takes a slot. Then
    each run holds one of the 2 and neither hands over (neither holds more than half)."""
    monkeypatch.setattr(host_slots, "TURN_S", 0.0)
    host = HostSpec("two", f"http://two-{uuid.uuid4().hex[:8]}", slots=2)
    registry = Registry(tmp_path / "holders", by_count=False)
    open_ = _Open()

    async def main() -> None:
        async with get_client() as reader, prefect_client() as a_api, prefect_client() as b_api:
            names = await size_limits(reader, (host,))
            name = names[host.name]

            async def active() -> int:
                return (await reader.read_global_concurrency_limit_by_name(name)).active_slots

            a = await _run(a_api, names, registry, "'a' (process 1 on box)", 600, slots=2)
            b = await _run(b_api, names, registry, "'b' (process 2 on box)", 600, slots=2)
            await a.reserve((host,))
            a_lanes = [a.lane(host.name, open_.watch("a")) for _ in range(2)]
            for lane in a_lanes:
                await _request(lane)
            b_task, b_holds, b_done = await _b_waits(b, host, open_, registry)
            first = asyncio.create_task(_request(a_lanes[0]))
            await until(lambda: a.lanes_waiting(host.name) == 1, 30)  # handed over: waits
            assert not b_holds.is_set() and await active() == 2  # the lease is still whole
            second = asyncio.create_task(_request(a_lanes[1]))
            await asyncio.wait_for(b_holds.wait(), 60)
            await asyncio.wait((first, second), return_when=asyncio.FIRST_COMPLETED)
            assert await active() == 2 and a.held(host.name) == b.held(host.name) == 1
            b_done.set()
            await b_task  # B holds no more than half: its slot parked, back within a second
            await asyncio.gather(first, second)
            for lane in a_lanes:
                lane.finish()
            await a.close()
            await b.close()
            assert await active() == 0

    asyncio.run(main())
    assert open_.most == 2


def _work(n: int, temperature: float) -> list[WorkItem]:
    config = Config(
        MODEL, GenerationParams(num_predict=8, temperature=temperature), PromptTemplate("default")
    )
    return [WorkItem(config, case, SUITE.name) for case in SUITE.cases[:n]]


class _Stored:
    def __init__(self) -> None:
        self.records: list[GenerationRecord] = []

    async def put(self, records) -> None:
        self.records.extend(records)

    async def flush(self) -> None: ...


def test_two_runs_on_a_one_slot_host_both_complete_taking_turns(tmp_path, monkeypatch):
    """Two runs of 12 generations in chunks of 3 on one stand-in host with 1 slot
    (100 ms a request), started together, each lane giving up its wait after 0.3 s:
    the second run's lanes failed ``SlotUnavailable`` while the first ran on. Now both
    store all 12, the host never has 2 requests open, and the runs' requests interleave."""
    monkeypatch.setattr(host_slots, "TURN_S", 0.0)
    registry = Registry(tmp_path / "holders", by_count=True)
    open_ = _Open()

    async def one_run(server, reader, names, label: str, temperature: float) -> list:
        host = server.host("shared", slots=1)
        backend = OllamaBackend(host, timeout_s=30, first_request_timeout_s=30)
        stored = _Stored()
        async with prefect_client() as api:
            slots = await _run(api, names, registry, label, timeout_s=0.3)
            context = GenerationContext(
                engine=None,
                experiment_id=0,
                suite=SUITE,
                backends={host.name: backend},
                slots=slots,
                policy=RetryPolicy(max_attempts=1),
                writer=stored,
            )
            items = _work(12, temperature)
            try:
                for start in range(0, len(items), 3):
                    await generate_once(host, items[start : start + 3], context, open_.watch(label))
            finally:
                await slots.close()
                await backend.aclose()
        return stored.records

    async def main(server) -> tuple[list, list]:
        async with get_client() as reader:
            names = await size_limits(reader, (server.host("shared", slots=1),))
            return await asyncio.gather(
                one_run(server, reader, names, "a", 0.0), one_run(server, reader, names, "b", 0.7)
            )

    with running_standin(StandInConfig(models=(MODEL,), slots=1, latency_ms=100)) as server:
        first, second = asyncio.run(main(server))
        most = server.stats.max_in_flight
    assert [r.error for r in first + second if not r.ok] == []
    assert len(first) == len(second) == 12
    assert most == 1 and open_.most == 1
    assert len(open_.turns) >= 3  # a, b, a...: each had turns while the other ran
