"""Spreading work over a pool of hosts.

Every host runs as many lanes as it has slots; a lane takes the next chunk of work for a
model its host serves, preferring the model the host already has loaded (fewer model
swaps) and otherwise the model fewest hosts are working on (spread), a model a resumed
run had partly done first (the host may still have it loaded). A chunk is cut when
a lane takes it, at the lane's fair share of what is left of that model (queued, and not
yet reached in the chunks running): its pace (generations per second, measured on its
host's earlier chunks) over the pace of every lane serving the model. So a slow host's
last chunk ends about when the fast hosts run out, instead of leaving them idle behind
it, while lanes of equal pace keep chunks of the largest size. A lane that finds nothing
left to take for its host takes items not started yet of the running chunk of another
host (of a model its host serves) that has the most of them (``evaluation.run._chunk``),
its share by the two hosts' pace (half from a host not measured yet): a host that stops
answering keeps only the item it is stuck on, instead of its whole chunk while the other
hosts idle, and a fast host finishing early shares a slow host's tail. Failing that, it
takes from an overdue chunk of any host, its own included (taken longer ago than its
items take at its host's pace, plus ``OVERDUE_MARGIN_S``): all but the first item of
a chunk not started yet; half those not started yet of its own host's others. Under
load a lane can wait seconds to start its chunk (256 slots x 50 ms, lane workers: the
last ~1,151 items sat in 10-18 chunks not started while the other lanes of their host
idled, and ran in 3 waves after gaps with no request open). When a host goes
down its unfinished items go back to the queue for hosts serving the same model; items
no live host serves end as ``unservable`` with the reason and the host that went down,
for the caller to record as failed (a rerun picks them up). A host that answered 503
(overloaded) to every try of a generation leaves the same way, but the items no live
host serves then, where it serves their model, are ``deferred``, not failed: the host
refuses work for now, and the caller stops the run for a later one to resume.

A host's lanes start on chunks of different sizes (``first_part``): lanes that start
together on chunks of one size end them together, and a 64-slot host whose 64 lanes
all turned to their next chunk at once (each sent to a lane worker process, with
``run --workers``) fell to 1 request open for ~0.5 s (benchmarks/perf/README.md).

A host's lanes run together under one ``on_host`` call (the generate stage's Prefect task
run of that host: one per host rather than one per chunk, see ``HostRunner``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from evaluation.backends.retry import FailedAttempt
from evaluation.errors import BackendUnavailable
from evaluation.run._chunk import Chunk
from evaluation.run._generate import ChunkOutcome
from evaluation.run._work import WorkItem, WorkKey
from evaluation.spec import HostSpec

ChunkRunner = Callable[[HostSpec, Chunk], Awaitable[ChunkOutcome]]
HostRunner = Callable[[HostSpec, Callable[[], Awaitable[None]]], Awaitable[None]]
"""Runs a host's lanes: awaits ``lanes()``, every lane of the host at once, in whatever
holds them (the generate stage's one Prefect task run per host). A task run per chunk
cost the embedded server several writes before each chunk's first request: at 256 slots
the lanes waited for their task runs to start, 16 of 256 requests open
(benchmarks/perf/throughput_goal.py)."""

MAX_CHUNK = 100
CHUNKS_PER_LANE = 1
STEAL_LOOK_S = 0.5  # an idle lane looks this often for items to take from other lanes
OVERDUE_MARGIN_S = 1.0
"""A chunk is overdue (its items not started yet free to any idle lane) this long after
its items should have ended at its host's pace: a lane on time can start late by what a
start costs under load (a lane worker's seat, the host slot, the chunk sent to the
worker: ~0.5 s when 64 lanes turned at once) and its requests vary about the mean pace;
cutting such a chunk gains nothing and costs a chunk (its slot, its records' batch).
With ``STEAL_LOOK_S``, an overdue chunk waits at most 1.5 s for an idle lane."""
FIRST_CHUNK_PART = 4  # beside hosts not measured yet, a chunk is this part of the largest


def first_part(lane: int, lanes: int) -> float:
    """The first chunk of a host's lane ``lane`` (of ``lanes``), as a part of the chunk it
    would take: from the whole for lane 0 to about half for the last, so the host's lanes
    end their first chunks spread over half a chunk's time, and keep apart after."""
    return 1.0 - lane / (2 * lanes)


class Unservable(NamedTuple):
    """An item no live host could take: why, and the (first) host serving its model,
    "" where none does: what its failed row and ``evalflow_generations_failed`` name."""

    item: WorkItem
    reason: str
    host: str

    @property
    def error(self) -> str:
        """Its failed row's error (the metrics' reason label: ``BackendUnavailable``)."""
        return f"{BackendUnavailable.__name__}: {self.reason}"


UnservableListener = Callable[[list[Unservable]], Awaitable[None]]
"""Told of items as they become unservable (the run's progress counts them failed then:
a server killed mid-run left the terminal's line at 0 failed where 21 had)."""


@dataclass
class DispatchReport:
    total: int
    generated: int = 0
    failed: int = 0
    chunks: int = 0
    unservable: list[Unservable] = field(default_factory=list)
    hosts_down: dict[str, str] = field(default_factory=dict)
    # hosts that answered 503 to every try of a generation, and why; the items left to
    # them (no live host serving their model), for a later run: not failed
    hosts_overloaded: dict[str, str] = field(default_factory=dict)
    deferred: list[WorkItem] = field(default_factory=list)
    model_switches: dict[str, int] = field(default_factory=dict)
    items_per_host: dict[str, int] = field(default_factory=dict)
    stolen: dict[str, int] = field(default_factory=dict)  # host -> items it took from others


def default_chunk_size(n_items: int, total_slots: int) -> int:
    """The largest chunk: one per lane, at most MAX_CHUNK items. Every chunk is a Prefect
    task run, which costs several API writes before its first request: measured at 800
    generations on 4 slots, one task per generation ran 12.7x slower than the ideal,
    50-item chunks 1.28x, 200-item chunks 1.13x (benchmarks/perf/sweep_throughput.py).
    Two per lane (as before) made 500 task runs of 4 items for 2,000 generations on 256
    slots: 49 ms of CPU per generation and slot writes failing on the busy server; one
    per lane 28 ms, none failed (benchmarks/perf/throughput_goal.py). Lanes that end
    early take the unstarted tail of the others' chunks (``steal``). The cap keeps
    failover and progress granular on large sweeps."""
    if n_items == 0:
        return 1
    lanes = max(total_slots, 1) * CHUNKS_PER_LANE
    # Rounded down: at least as many chunks as lanes (6 items on 4 slots rounded up made
    # 3 chunks of 2, a slot idle).
    return max(1, min(MAX_CHUNK, n_items // lanes))


class Pace:
    """Generations per second of one lane of a host on a model, from the request time of
    the generations it ran. Not from a chunk's wall time: under load a chunk's start (a
    Prefect task run, its slot) costs seconds whatever the host, which made a fast
    host look as slow as a slow one (tests/flows/test_evaluate.py)."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, str], tuple[int, float]] = {}

    def observe(self, host: str, model: str, items: int, seconds: float) -> None:
        if items > 0 and seconds > 0:
            n, s = self._done.get((host, model), (0, 0.0))
            self._done[(host, model)] = (n + items, s + seconds)

    def rate(self, host: str, model: str) -> float | None:
        n, s = self._done.get((host, model), (0, 0.0))
        return n / s if n else None


class _Queue:
    """Work per model in sweep order (which groups by model then num_ctx), cut into a
    chunk when a lane takes it: never across a run group, at most ``max_chunk`` items,
    else the lane's fair share of the model's work left (``share``). Chunks taken are
    running until ``finish``, which measures their host's pace."""

    def __init__(
        self,
        items: Sequence[WorkItem],
        hosts: Sequence[HostSpec],
        pace: Pace,
        max_chunk: int,
        first_models: Collection[str] = (),
    ) -> None:
        self.hosts = hosts
        self.first_models = first_models
        self.pace = pace
        self.max_chunk = max_chunk
        self.runs: dict[str, deque[deque[WorkItem]]] = defaultdict(deque)
        self.left: dict[str, int] = defaultdict(int)
        for item in items:
            runs = self.runs[item.model]
            if not runs or _run_group(runs[-1][-1]) != _run_group(item):
                runs.append(deque())
            runs[-1].append(item)
            self.left[item.model] += 1
        self.hosts_on: dict[str, int] = defaultdict(int)
        self.down: set[str] = set()
        self.running: dict[int, tuple[str, str, Chunk, float]] = {}  # host, model, chunk, start
        # each running chunk's items as cut, less those stolen: its length without taking
        # its lock (a lock shared with a lane worker process, once per running chunk at
        # every take: 13% of the command's interpreter time at 256 lanes, py-spy)
        self.sizes: dict[int, int] = {}
        self.spent: set[int] = set()  # running chunks found overdue with nothing to spare
        self.earlier: dict[WorkKey, tuple[FailedAttempt, ...]] = {}  # of items given back

    def take(
        self, host: HostSpec, loaded: str | None, now: float, part: float = 1.0
    ) -> Chunk | None:
        """The next chunk for ``host``'s lane: ``part`` of its share (``first_part``), of
        the model it has loaded, else of the one fewest hosts work on, a model of
        ``first_models`` first (a resumed run's partly done ones: an interrupted model's
        leftovers ran last, one more model swap on a host that had it loaded), then the
        one with the most items left."""
        if loaded is not None and self.runs.get(loaded):
            model = loaded
        else:
            candidates = [m for m, runs in self.runs.items() if runs and host.serves(m)]
            if not candidates:
                return None
            model = min(
                candidates,
                key=lambda m: (self.hosts_on[m], m not in self.first_models, -self.left[m]),
            )
        run = self.runs[model][0]
        size = max(1, math.ceil(self.share(host, model, now) * part))
        taken = [run.popleft() for _ in range(min(size, len(run)))]
        earlier = {i.key: self.earlier.pop(i.key) for i in taken if i.key in self.earlier}
        chunk = Chunk(taken, earlier)
        if not run:
            self.runs[model].popleft()
        self.left[model] -= len(chunk)
        self.running[id(chunk)] = (host.name, model, chunk, now)
        self.sizes[id(chunk)] = len(taken)
        return chunk

    def steal(self, host: HostSpec, loaded: str | None, now: float) -> Chunk | None:
        """Items not started yet of another host's running chunk (of a model ``host``
        serves, the loaded one first, then the most items), as a chunk of ``host``'s: its
        share by pace (``host``'s over both hosts'), so that both end about together and
        a slow host never takes a fast one's tail; half, rounded up, from a host whose
        pace is not known yet (it may be stuck on its first request). Else those of an
        overdue chunk (``overdue``). None when no chunk has an item to spare."""
        offers = []
        for name, model, chunk, _ in self.running.values():
            if name == host.name or not host.serves(model):
                continue
            left = chunk.unstarted()
            mine, theirs = self.pace.rate(host.name, model), self.pace.rate(name, model)
            if theirs is None:
                count = math.ceil(left / 2)
            else:
                count = math.floor(left * (mine or theirs) / ((mine or theirs) + theirs))
            if count > 0:
                offers.append((model == loaded, left, count, chunk))
        if offers:
            _, _, count, victim = max(offers, key=lambda o: o[:2])
            if taken := victim.steal(count):  # none when a lane worker started them since
                return self._stolen(host, victim, taken, now)
        return self.overdue(host, loaded, now)

    def overdue(self, host: HostSpec, loaded: str | None, now: float) -> Chunk | None:
        """Items not started yet of a running chunk, of any host's serving a model
        ``host`` serves (its own too), that is overdue: taken longer ago than its items
        take a lane of its host (its pace) plus ``OVERDUE_MARGIN_S``; the loaded model
        first, then the largest. All but the first of a chunk not started yet, half of
        the rest of one of ``host``'s own (another host's started chunks are ``steal``'s,
        by pace). Chosen from the sizes and times kept here, without the chunks' locks
        (shared with the lane workers); only the one taken from is locked. None when no
        overdue chunk has an item to spare, or no lane's pace on the model is known."""
        late = []
        for key, (name, model, chunk, start) in self.running.items():
            size = self.sizes[key]
            if size < 2 or key in self.spent or not host.serves(model):
                continue
            pace = self.pace.rate(name, model) or self._usual_pace(model)
            if pace is not None and now - start > size / pace + OVERDUE_MARGIN_S:
                late.append((model == loaded, size, name == host.name, chunk))
        for _, _, own, victim in sorted(late, key=lambda o: o[:2], reverse=True):
            if taken := victim.steal_overdue(started=own):
                return self._stolen(host, victim, taken, now)
            if own:  # its lane has started and has at most one left: not locked again
                self.spent.add(id(victim))
        return None

    def _usual_pace(self, model: str) -> float | None:
        """The mean pace of the hosts measured on ``model``, None before any is."""
        known = [r for h in self.hosts if (r := self.pace.rate(h.name, model)) is not None]
        return sum(known) / len(known) if known else None

    def _stolen(self, host: HostSpec, victim: Chunk, taken: list[WorkItem], now: float) -> Chunk:
        """``taken`` from ``victim``, running as a chunk of ``host``'s from ``now``."""
        stolen = Chunk(taken, victim.earlier)
        self.running[id(stolen)] = (host.name, stolen[0].model, stolen, now)
        self.sizes[id(stolen)] = len(taken)
        self.sizes[id(victim)] -= len(taken)
        return stolen

    def finish(self, chunk: Chunk, done: int, seconds: float) -> None:
        """``chunk`` has ended, ``done`` of its items generated in ``seconds`` of
        requests: its host's pace takes them in."""
        host, model, _, _ = self.running.pop(id(chunk))
        del self.sizes[id(chunk)]
        self.spent.discard(id(chunk))
        self.pace.observe(host, model, done, seconds)

    def share(self, host: HostSpec, model: str, now: float) -> int:
        """The lane's pace over every live lane's on ``model`` (a host not measured yet
        counted at the mean of those that are), times the model's items left: queued,
        and those the running chunks have not reached yet at their pace. Beside other
        hosts, chunks stay small until every host's pace is known, so that a slow host
        shows its pace before it holds much work."""
        serving = [h for h in self.hosts if h.serves(model) and h.name not in self.down]
        rates = {h.name: self.pace.rate(h.name, model) for h in serving}
        known = [r for r in rates.values() if r is not None]
        usual = sum(known) / len(known) if known else 1.0
        own = rates.get(host.name)
        lane = own or usual
        lanes = sum(h.slots * (rates[h.name] or usual) for h in serving) or lane
        backlog = self.left[model] + sum(
            max(0.0, self.sizes[key] - (now - start) * (rates.get(name) or usual))
            for key, (name, m, _, start) in self.running.items()
            if m == model
        )
        size = math.ceil(backlog * lane / lanes)
        if len(serving) > 1 and None in rates.values():
            size = min(size, math.ceil(self.max_chunk / FIRST_CHUNK_PART))
        return max(1, min(self.max_chunk, size))

    def give_back(self, items: list[WorkItem]) -> None:
        """Return unfinished work to the front of its model's queue, for the remaining
        hosts' lanes to share."""
        if items:
            self.runs[items[0].model].appendleft(deque(items))
            self.left[items[0].model] += len(items)

    def remaining(self) -> list[WorkItem]:
        return [item for runs in self.runs.values() for run in runs for item in run]

    def unservable(self) -> list[WorkItem]:
        """The queued items of models no live host serves: none will take them."""
        live = [h for h in self.hosts if h.name not in self.down]
        return [
            item
            for model, runs in self.runs.items()
            if not any(h.serves(model) for h in live)
            for run in runs
            for item in run
        ]


def _run_group(item: WorkItem) -> tuple[str, int | None]:
    """Items that can share a loaded model: runner options such as num_ctx reload it."""
    return (item.model, item.config.params.num_ctx)


async def dispatch(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    run: ChunkRunner,
    *,
    chunk_size: int | None = None,
    pace: Pace | None = None,
    on_host: HostRunner | None = None,
    on_unservable: UnservableListener | None = None,
    first_models: Collection[str] = (),
) -> DispatchReport:
    """Run ``items`` on ``hosts`` through ``run`` (one call per chunk, of at most
    ``chunk_size`` items) until all are done or no live host can take what is left;
    ``pace``: the hosts' pace so far, kept across the dispatches of one run (a race's
    rounds), else measured afresh; ``on_host``: what each host's lanes run in;
    ``on_unservable``: told of the items no live host serves as each host goes down (the
    rest at the end), each item once: together, ``report.unservable``; ``first_models``:
    models a lane with none of its host's loaded starts with (``_Queue.take``)."""
    report = DispatchReport(total=len(items))
    size = chunk_size or default_chunk_size(len(items), sum(h.slots for h in hosts))
    queue = _Queue(items, hosts, pace or Pace(), size, first_models)
    changed = asyncio.Condition()
    in_flight = 0
    loaded: dict[str, str | None] = {h.name: None for h in hosts}
    told: set[WorkKey] = set()

    async def tell(unservable: list[Unservable]) -> None:
        """Tell ``on_unservable`` of those not told yet."""
        new = [u for u in unservable if u.item.key not in told]
        told.update(u.item.key for u in new)
        if new and on_unservable is not None:
            await on_unservable(new)

    def failed(items: list[WorkItem]) -> list[Unservable]:
        """``items`` (no live host serves them) as unservable, but those ``deferred``."""
        return [unservable(item) for item in items if not deferred(item)]

    async def lane(host: HostSpec, place: int) -> None:
        nonlocal in_flight
        part = first_part(place, host.slots)
        while host.name not in queue.down:
            async with changed:
                chunk = next_chunk(host, part)
                while chunk is None and in_flight > 0 and host.name not in queue.down:
                    # Woken when a chunk ends, and every STEAL_LOOK_S: a chunk's items
                    # can be taken once its lane has started (``Chunk.unstarted``) or
                    # it is overdue (``_Queue.overdue``), neither of which wakes it.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), STEAL_LOOK_S)
                    chunk = next_chunk(host, part)
                part = 1.0
                if chunk is None or host.name in queue.down:
                    if chunk is not None:
                        queue.finish(chunk, 0, 0.0)
                        queue.give_back(list(chunk))
                        queue.earlier.update(chunk.earlier)
                        await tell(failed(queue.unservable()))
                    return
                model = chunk[0].model
                if loaded[host.name] != model:
                    if loaded[host.name] is not None:
                        queue.hosts_on[loaded[host.name]] -= 1
                        report.model_switches[host.name] = (
                            report.model_switches.get(host.name, 0) + 1
                        )
                    loaded[host.name] = model
                    queue.hosts_on[model] += 1
                in_flight += 1
            try:
                outcome = await run(host, chunk)
            except BaseException:
                async with changed:
                    in_flight -= 1
                    queue.finish(chunk, 0, 0.0)
                    changed.notify_all()
                raise
            async with changed:
                in_flight -= 1
                report.chunks += 1
                ok = sum(1 for r in outcome.records if r.ok)
                report.generated += ok
                report.failed += len(outcome.records) - ok
                report.items_per_host[host.name] = report.items_per_host.get(host.name, 0) + len(
                    outcome.records
                )
                if outcome.host_down:  # its pace is not measured from a failing chunk
                    queue.finish(chunk, 0, 0.0)
                    out = report.hosts_overloaded if outcome.overloaded else report.hosts_down
                    out[host.name] = outcome.host_down_reason or "host down"
                    queue.down.add(host.name)
                    queue.give_back(outcome.unfinished)
                    queue.earlier.update(outcome.earlier)
                    await tell(failed(queue.unservable()))
                else:
                    done = [r.result.latency_s for r in outcome.records if r.result is not None]
                    timed = [s for s in done if s is not None]  # None: not measured
                    queue.finish(chunk, len(timed), sum(timed))
                changed.notify_all()

    def next_chunk(host: HostSpec, part: float) -> Chunk | None:
        """Work queued for ``host`` (``part`` of a lane's share), else what it can take
        from another host's chunk."""
        now = time.perf_counter()
        chunk = queue.take(host, loaded[host.name], now, part)
        if chunk is None and (chunk := queue.steal(host, loaded[host.name], now)) is not None:
            report.stolen[host.name] = report.stolen.get(host.name, 0) + len(chunk)
        return chunk

    async def host_lanes(host: HostSpec) -> None:
        await _together([lane(host, place) for place in range(host.slots)])

    async def directly(host: HostSpec, lanes: Callable[[], Awaitable[None]]) -> None:
        await lanes()

    def deferred(item: WorkItem) -> bool:
        """Whether a host serving ``item``'s model left overloaded: for a later run."""
        return any(h.name in report.hosts_overloaded for h in hosts if h.serves(item.model))

    def unservable(item: WorkItem) -> Unservable:
        serving = [h.name for h in hosts if h.serves(item.model)]
        if not serving:
            reason = f"no host serves model {item.model!r}"
        else:
            downs = "; ".join(report.hosts_down.get(h, "") for h in serving)
            reason = f"every host serving {item.model!r} is down ({downs})"
        return Unservable(item, reason, serving[0] if serving else "")

    run_host = on_host or directly
    await _together([run_host(h, functools.partial(host_lanes, h)) for h in hosts])
    remaining = queue.remaining()
    report.deferred = [item for item in remaining if deferred(item)]
    report.unservable = failed(remaining)
    await tell(report.unservable)
    return report


async def _together(work: Sequence[Awaitable[None]]) -> None:
    """Run ``work`` at once until every one has ended. When one fails, or this is
    cancelled, stop the others (once: a second cancel would cut short a lane giving its
    host slot back) and wait until each has, rather than leave lanes generating for a
    run that has ended; then raise."""
    running = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.gather(*running)
    except BaseException:
        for task in running:
            if not task.done() and not task.cancelling():
                task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
