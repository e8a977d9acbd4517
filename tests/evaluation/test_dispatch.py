"""The host-pool dispatcher: every item once, slots respected, models kept together,
a dead host's work moved to hosts that serve the same model."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import replace

from evaluation.backends.base import GenerationResult
from evaluation.errors import BackendUnavailable
from evaluation.run._chunk import Chunk
from evaluation.run._dispatch import Pace, _Queue, default_chunk_size, dispatch
from evaluation.run._generate import ChunkOutcome, host_down_reason
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case

RESULT = GenerationResult(text="ok", done_reason="stop", latency_s=0.01, ttft_s=0.005)


def items(models=("m1", "m2"), cases=10, num_ctx=(None,)) -> list[WorkItem]:
    configs = [
        Config(m, GenerationParams(num_ctx=ctx), PromptTemplate("default"))
        for m in models
        for ctx in num_ctx
    ]
    return [WorkItem(c, Case(f"c{i}", "q", ("a",)), "s") for c in configs for i in range(cases)]


class FakePool:
    """Runs chunks with a short sleep, counting in-flight chunks per host."""

    def __init__(self, down_after: dict[str, int] | None = None) -> None:
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.done: list[tuple[str, WorkItem]] = []
        self.chunks: list[list[WorkItem]] = []
        self.down_after = down_after or {}

    async def run(self, host: HostSpec, chunk: Chunk) -> ChunkOutcome:
        """As ``run_chunk`` does, each item claimed from the chunk as it starts (an idle
        lane of another host may take those not started yet)."""
        self.in_flight[host.name] += 1
        self.peak[host.name] = max(self.peak[host.name], self.in_flight[host.name])
        self.chunks.append(list(chunk))
        outcome = ChunkOutcome()
        try:
            for item in iter(chunk.start_next, None):
                await asyncio.sleep(0.001)
                served = sum(1 for h, _ in self.done if h == host.name)
                if served >= self.down_after.get(host.name, 10**9):
                    outcome.unfinished = [item, *chunk.rest()]
                    outcome.host_down_reason = f"{host.name} unreachable"
                    return outcome
                self.done.append((host.name, item))
                outcome.records.append(GenerationRecord(item, host.name, 1, result=RESULT))
            return outcome
        finally:
            self.in_flight[host.name] -= 1


def test_every_item_runs_once_and_no_host_exceeds_its_slots():
    work = items(cases=25)
    hosts = [HostSpec("a", "http://a", slots=3), HostSpec("b", "http://b", slots=1)]
    pool = FakePool()
    report = asyncio.run(dispatch(work, hosts, pool.run, chunk_size=4))
    keys = [item.key for _, item in pool.done]
    assert sorted(keys) == sorted(item.key for item in work)
    assert report.generated == len(work) and not report.unservable
    assert pool.peak["a"] <= 3 and pool.peak["b"] <= 1
    assert report.items_per_host["a"] > report.items_per_host["b"] > 0


def test_chunks_never_mix_models_or_context_sizes():
    pool = FakePool()
    work = items(models=("m1", "m2"), num_ctx=(2048, 8192), cases=7)
    asyncio.run(dispatch(work, [HostSpec("a", "http://a", slots=2)], pool.run, chunk_size=5))
    for chunk in pool.chunks:
        assert len({(i.model, i.config.params.num_ctx) for i in chunk}) == 1


def test_one_slot_host_switches_model_once():
    pool = FakePool()
    work = items(models=("m1", "m2"), cases=20)
    report = asyncio.run(
        dispatch(work, [HostSpec("a", "http://a", slots=1)], pool.run, chunk_size=3)
    )
    order = [item.model for _, item in pool.done]
    assert order == sorted(order)  # all of m1, then all of m2
    assert report.model_switches == {"a": 1}


def test_dead_host_work_moves_to_a_host_serving_the_same_model():
    pool = FakePool(down_after={"a": 5})
    work = items(models=("m1",), cases=40)
    hosts = [HostSpec("a", "http://a", slots=2), HostSpec("b", "http://b", slots=2)]
    report = asyncio.run(dispatch(work, hosts, pool.run, chunk_size=10))
    assert "a" in report.hosts_down
    assert sorted(i.key for _, i in pool.done) == sorted(i.key for i in work)
    assert report.generated == len(work) and not report.unservable


def test_work_nobody_else_serves_ends_unservable_with_the_reason():
    pool = FakePool(down_after={"a": 3})
    work = items(models=("only-on-a", "m2"), cases=10)
    hosts = [
        HostSpec("a", "http://a", slots=1, models=("only-on-a",)),
        HostSpec("b", "http://b", slots=1, models=("m2",)),
    ]
    report = asyncio.run(dispatch(work, hosts, pool.run, chunk_size=4))
    assert len(report.unservable) == 10 - 3
    assert all("only-on-a" in u.reason and "down" in u.reason for u in report.unservable)
    done = {i.key for _, i in pool.done}
    assert all(u.item.key not in done for u in report.unservable)
    assert sum(1 for _, i in pool.done if i.model == "m2") == 10


def test_items_no_live_host_serves_are_told_as_their_host_goes_down_each_once():
    """A server killed mid-run: its items were known lost only once every other host had
    finished, so the terminal's line showed 0 failed where the run ended with 21. Host b
    generates nothing until the listener is told of a's lost items: told at the end
    only, b would wait for ever (here: 10 s, then fail)."""
    pool = FakePool(down_after={"a": 3})
    work = items(models=("only-on-a", "m2"), cases=10)
    hosts = [
        HostSpec("a", "http://a", slots=1, models=("only-on-a",)),
        HostSpec("b", "http://b", slots=1, models=("m2",)),
    ]
    told: list[list] = []

    async def main():
        lost = asyncio.Event()

        async def on_unservable(unservable):
            told.append([(u.item.key, u.error) for u in unservable])
            lost.set()

        async def run(host, chunk):
            if host.name == "b":
                await asyncio.wait_for(lost.wait(), 10)
            return await pool.run(host, chunk)

        return await dispatch(work, hosts, run, chunk_size=4, on_unservable=on_unservable)

    report = asyncio.run(main())
    assert [u.item.key for u in report.unservable] != [] and len(report.unservable) == 7
    assert sorted(key for batch in told for key, _ in batch) == sorted(
        u.item.key for u in report.unservable
    )  # each once, all of them
    assert {error for batch in told for _, error in batch} == {u.error for u in report.unservable}
    words = "BackendUnavailable: every host serving 'only-on-a' is down (a unreachable)"
    assert {u.error for u in report.unservable} == {words}
    assert sum(1 for _, i in pool.done if i.model == "m2") == 10


def test_hosts_of_different_speed_get_work_in_proportion_and_end_together():
    """a: 2 lanes at 5 ms a generation, b: 2 lanes at 40 ms (8x slower): balanced work
    gives b 1/9 of the 180 items (20), both ending at 0.4 s. Fixed 23-item chunks gave
    b one per lane (46 items, 0.9 s) while a idled from 0.35 s on."""
    work = items(models=("m1",), cases=180)
    hosts = [HostSpec("a", "http://a", slots=2), HostSpec("b", "http://b", slots=2)]
    latency = {"a": 0.005, "b": 0.04}

    async def run(host: HostSpec, chunk: Chunk) -> ChunkOutcome:
        outcome = ChunkOutcome()
        result = replace(RESULT, latency_s=latency[host.name])
        for item in iter(chunk.start_next, None):
            await asyncio.sleep(latency[host.name])
            outcome.records.append(GenerationRecord(item, host.name, 1, result=result))
        return outcome

    report = asyncio.run(dispatch(work, hosts, run))
    assert report.generated == 180
    assert 10 <= report.items_per_host["b"] <= 36  # balanced: 20 (measured 22-26)


def test_default_chunk_size_gives_one_chunk_per_lane_capped():
    assert default_chunk_size(800, 4) == 100
    assert default_chunk_size(80, 4) == 20
    assert default_chunk_size(2000, 256) == 7  # rounded down: no lane left without one
    assert default_chunk_size(6, 4) == 1
    assert default_chunk_size(100_000, 4) == 100
    assert default_chunk_size(3, 8) == 1


def test_a_cancelled_or_failed_dispatch_stops_every_lane_and_lets_each_clean_up():
    """Cancelling the dispatch (a cancel from the Prefect UI), or one lane failing, stops
    every lane, and each lane's cleanup (giving its host slot back) runs to its end
    before the dispatch returns: a second cancel must not cut it short."""
    hosts = [HostSpec("a", "http://a", slots=3)]
    cleaned: list[str] = []

    async def run(host: HostSpec, chunk: list[WorkItem]) -> ChunkOutcome:
        try:
            if chunk[0].case.id == "c0":
                await asyncio.sleep(0.05)
                raise RuntimeError("lane broke")
            await asyncio.sleep(30)
            return ChunkOutcome()
        finally:
            await asyncio.sleep(0.01)  # an API call giving the slot back
            cleaned.append(chunk[0].case.id)

    async def cancelled() -> list[str]:
        task = asyncio.ensure_future(dispatch(items(("m1",), cases=3), hosts, run, chunk_size=1))
        await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return sorted(cleaned)  # when the dispatch has returned, not at the loop's end

    assert asyncio.run(cancelled()) == ["c0", "c1", "c2"]

    cleaned.clear()

    async def failed() -> tuple[str, list[str]]:
        try:
            await dispatch(items(("m1",), cases=3), hosts, run, chunk_size=1)
        except RuntimeError as exc:
            return str(exc), sorted(cleaned)
        return "no error", sorted(cleaned)

    assert asyncio.run(failed()) == ("lane broke", ["c0", "c1", "c2"])


def test_a_down_hosts_reason_names_no_model_as_it_stands_for_all_it_serves():
    # A newcomer's gemma3 items failed "every host serving 'gemma3' is down (llama-cpp
    # unreachable: llama-cpp (model 'smollm2'): ConnectError ...)".
    exc = BackendUnavailable(
        "llama-cpp (model 'smollm2'): ConnectError: refused", host="llama-cpp", model="smollm2"
    )
    assert host_down_reason(exc, "llama-cpp") == "llama-cpp unreachable: ConnectError: refused"
    bare = BackendUnavailable("llama-cpp: ConnectError: refused", host="llama-cpp")
    assert host_down_reason(bare, "llama-cpp") == "llama-cpp unreachable: ConnectError: refused"


def test_a_hosts_lanes_start_on_chunks_of_different_sizes():
    """Lanes that start together on chunks of one size end them together: all of a
    host's lanes then wait for their next chunk at once (with lane workers a 64-slot
    host fell to 1 request open for ~0.5 s). Their first chunks run from the whole
    share (100) down to about half; the later ones are whole shares again."""
    pool = FakePool()
    work = items(models=("m1",), cases=800)
    asyncio.run(dispatch(work, [HostSpec("a", "http://a", slots=4)], pool.run))
    assert [len(chunk) for chunk in pool.chunks[:4]] == [100, 88, 75, 63]
    assert len(pool.chunks[4]) == 100
    assert sorted(i.key for _, i in pool.done) == sorted(i.key for i in work)


class _CountedLock(contextlib.AbstractContextManager):
    """A running chunk's lock (with lane workers, one shared with a worker process)."""

    def __init__(self) -> None:
        self.taken = 0

    def __enter__(self) -> None:
        self.taken += 1

    def __exit__(self, *exc_info: object) -> None:
        return None


def test_cutting_a_chunk_reads_no_running_chunks_lock():
    """A chunk's size counts the running chunks' items not reached yet: at 256 lanes
    their locks (shared with the worker processes) were taken once per running chunk at
    every cut, 13% of the command's interpreter time. Their sizes are known here."""
    host = HostSpec("a", "http://a", slots=4)
    queue = _Queue(items(models=("m1",), cases=400), [host], Pace(), 100)
    running = [queue.take(host, None, 0.0) for _ in range(3)]
    locks = [_CountedLock() for _ in running]
    for chunk, lock in zip(running, locks, strict=True):
        chunk._cursor.lock = lock
    fourth = queue.take(host, None, 0.0)
    assert [lock.taken for lock in locks] == [0, 0, 0]
    # the running chunks still count whole (not reached yet): 400 items over 4 lanes
    assert [len(c.items) for c in [*running, fourth]] == [100, 100, 100, 100]


def _two_lanes_one_slow() -> tuple[HostSpec, _Queue, Chunk]:
    """Host ``h`` (2 lanes, 20 generations a second a lane) with 80 items: lane A takes
    40 at 0 s, lane B the other 40 and ends them by 2 s; A's chunk is returned."""
    host = HostSpec("h", "http://h", slots=2)
    queue = _Queue(items(models=("m1",), cases=80), [host], Pace(), 100)
    slow, done = queue.take(host, None, 0.0), queue.take(host, None, 0.0)
    assert (len(slow), len(done)) == (40, 40) and queue.take(host, "m1", 2.0) is None
    list(iter(done.start_next, None))
    queue.finish(done, 40, 2.0)
    return host, queue, slow


def test_an_idle_lane_takes_half_of_an_overdue_chunk_of_its_own_host():
    """256 slots x 50 ms: the last ~1,151 items sat for seconds in chunks whose lanes
    had not reached them while the other lanes of their host idled (another host's
    chunks only were taken from). At 40 items / 20 a second + 1 s a chunk is overdue:
    lane B takes half of what lane A has not started; not before."""
    host, queue, slow = _two_lanes_one_slow()
    first = slow.start_next()
    assert queue.steal(host, "m1", 1.0) is None  # on time: A's 40 take it 2 s
    assert queue.steal(host, "m1", 2.9) is None
    stolen = queue.steal(host, "m1", 5.0)
    assert stolen is not None and len(stolen) == 19  # of 39 not started
    assert list(stolen) == slow.items[21:] and list(slow) == slow.items[:21]
    assert [first, *iter(slow.start_next, None)] == slow.items[:21]  # each item once
    assert queue.sizes[id(slow)] == 21 and queue.running[id(stolen)][0] == "h"


def test_an_overdue_chunk_whose_lane_never_started_keeps_only_its_first_item():
    host, queue, slow = _two_lanes_one_slow()
    assert queue.steal(host, "m1", 1.0) is None
    stolen = queue.steal(host, "m1", 5.0)
    assert stolen is not None and list(stolen) == slow.items[1:]
    assert list(iter(slow.start_next, None)) == slow.items[:1]
    assert list(iter(stolen.start_next, None)) == slow.items[1:]
    assert queue.steal(host, "m1", 60.0) is None  # each has started its last item
    # another host's chunk that its lane never started: the same once overdue
    other = HostSpec("g", "http://g", slots=1)
    queue = _Queue(items(models=("m1",), cases=40), [host, other], Pace(), 100)
    queue.pace.observe("g", "m1", 20, 1.0)
    theirs = queue.take(other, None, 0.0)
    assert queue.steal(host, "m1", 1.0) is None
    assert list(queue.steal(host, "m1", 5.0)) == theirs.items[1:]


def test_a_lane_with_nothing_loaded_starts_on_a_model_a_resumed_run_had_partly_done():
    """5 items of model A left (the run that was interrupted was on it, its host may
    still have it loaded) and 37 of B untouched: A first, not the most items left."""
    work = [*items(models=("A",), cases=5), *items(models=("B",), cases=37)]
    host = HostSpec("h", "http://h", slots=1)
    assert queue_model(_Queue(work, [host], Pace(), 100)) == "B"
    assert queue_model(_Queue(work, [host], Pace(), 100, first_models={"A"})) == "A"


def queue_model(queue: _Queue) -> str:
    chunk = queue.take(queue.hosts[0], None, 0.0)
    assert chunk is not None
    return chunk[0].model
