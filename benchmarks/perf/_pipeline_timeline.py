"""Where a host's slot-seconds go in a pipeline scenario (``pipeline_throughput.py
--timeline``): a diagnostic, not a figure of the benchmark.

``Timeline.record()`` wraps a few points of the product for the scenario's duration (no
product code knows of it): each model call's ask for a slot, the slot it got (the lane's
or a spare, and the lease), its HTTP request, its end; each chunk's call, body and
return (chunks are plain coroutines in the host's one task run); each case; and the
lease moves of ``HostSlots`` (taken from the limit, parked, released). The stand-in host
gives each request's start and end (``GET /_stats?spans=1``). ``report`` splits the
phase's idle slot-seconds (slots × phase − the requests' seconds at the host) by what
the client was doing meanwhile, and lists each lease's idle gaps.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import heapq
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

MIN_GAP_S = 0.02  # a lease's idle gaps shorter than this are not listed
WAITS_SHOWN = 12
GANTT_S = 0.02
GANTT_MAX = 160
INF = float("inf")


@dataclass
class Call:
    case: str
    stage: str
    asked: float
    kind: str = "?"
    lease: str = "?"
    got: float | None = None
    http_start: float | None = None
    http_end: float | None = None
    done: float | None = None


@dataclass
class Chunk:
    cases: tuple[str, ...]
    called: float
    body_start: float | None = None
    body_end: float | None = None
    returned: float | None = None


@dataclass
class Timeline:
    calls: list[Call] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    cases: dict[str, list[float]] = field(default_factory=dict)
    lease_events: list[tuple[float, str, str]] = field(default_factory=list)  # t, lease, what
    phase_start: float | None = None

    @contextlib.contextmanager
    def record(self) -> Iterator[None]:
        # Here, not at the top: the report alone (its test) needs none of Prefect.
        from evaluation.backends.ollama import OllamaBackend
        from evaluation.run import _generate, _pipelines
        from tasks import generation, host_pool
        from tasks.adapters import host_slots
        from tasks.adapters.host_slots import HostSlots
        from tasks.adapters.lane_slot import LaneSlot

        current: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
            "timeline_call", default=None
        )
        chunk_of: dict[tuple[str, ...], Chunk] = {}
        patches: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, new: Any) -> None:
            patches.append((owner, name, getattr(owner, name)))
            setattr(owner, name, new)

        with_slot = _pipelines._Handles._with_slot
        slot_for = _pipelines._Handles._slot_for
        generate = OllamaBackend.generate
        attempt = LaneSlot.attempt
        run_case = _generate.run_case
        run_chunk = generation.run_chunk
        generate_chunk = host_pool.generate_chunk
        reserve = HostSlots.reserve
        park = HostSlots.park
        give_back = HostSlots._write_give_back
        request_slots = HostSlots._request_slots
        take_parked = HostSlots.take_parked

        async def with_slot_(handles, model, call):
            stage = "?"
            record = Call(handles._item.case.id, stage, time.time())
            self.calls.append(record)
            token = current.set(record)
            try:
                return await with_slot(handles, model, call)
            finally:
                record.done = time.time()
                current.reset(token)

        async def slot_for_(handles, model):
            spare = await slot_for(handles, model)
            record = current.get()
            if record is not None:
                record.got = time.time()
                record.kind = "lane" if spare is None else "spare"
                if spare is not None:
                    record.lease = spare.lease.id
            return spare

        async def generate_(backend, request):
            record = current.get()
            if record is not None:
                record.http_start = time.time()
                record.stage = request.messages[-1].content.split("\n", 1)[0][:24]
            try:
                return await generate(backend, request)
            finally:
                if record is not None:
                    record.http_end = time.time()

        @contextlib.asynccontextmanager
        async def attempt_(lane):
            async with attempt(lane):
                record = current.get()
                if record is not None and lane._lease is not None:
                    record.lease = lane._lease.id
                yield

        async def run_case_(item, suite, route):
            times = self.cases.setdefault(item.case.id, [time.time(), 0.0])
            try:
                return await run_case(item, suite, route)
            finally:
                times[1] = time.time()

        async def run_chunk_(backend, items, **kwargs):
            chunk = chunk_of.get(tuple(i.case.id for i in items))
            if chunk is not None:
                chunk.body_start = time.time()
            try:
                return await run_chunk(backend, items, **kwargs)
            finally:
                if chunk is not None:
                    chunk.body_end = time.time()

        async def generate_chunk_(host, items, context):
            key = tuple(i.case.id for i in items)
            chunk = chunk_of[key] = Chunk(key, time.time())
            self.chunks.append(chunk)
            try:
                return await generate_chunk(host, items, context)
            finally:
                chunk.returned = time.time()

        async def reserve_(slots, hosts):
            self.phase_start = time.time()
            return await reserve(slots, hosts)

        def park_(slots, host, lease, hold_s=None):
            self.lease_events.append((time.time(), lease.id, "parked"))
            return park(slots, host, lease, hold_s)

        def take_parked_(slots, host):
            lease = take_parked(slots, host)
            if lease is not None:
                self.lease_events.append((time.time(), lease.id, "unparked"))
            return lease

        async def give_back_(slots, key, leases):
            now = time.time()
            self.lease_events.extend((now, lease.id, "released") for lease in leases)
            return await give_back(slots, key, leases)

        async def request_slots_(slots, host, count):
            leases = await request_slots(slots, host, count)
            now = time.time()
            self.lease_events.extend((now, lease.id, "taken") for lease in leases)
            return leases

        patch(_pipelines._Handles, "_with_slot", with_slot_)
        patch(_pipelines._Handles, "_slot_for", slot_for_)
        patch(OllamaBackend, "generate", generate_)
        patch(LaneSlot, "attempt", attempt_)
        patch(_generate, "run_case", run_case_)
        patch(generation, "run_chunk", run_chunk_)
        patch(host_pool, "generate_chunk", generate_chunk_)
        patch(HostSlots, "reserve", reserve_)
        patch(HostSlots, "park", park_)
        patch(HostSlots, "take_parked", take_parked_)
        patch(HostSlots, "_write_give_back", give_back_)
        patch(HostSlots, "_request_slots", request_slots_)
        assert host_slots.LaneSlot is LaneSlot
        try:
            yield
        finally:
            for owner, name, old in reversed(patches):
                setattr(owner, name, old)

    def report(self, spans: list[list[float]], slots: int, phase_s: float) -> str:
        """The phase's idle slot-seconds by what the client was doing, then each
        lease's idle gaps. One sweep over the sorted times: every "how many at t" and
        "what is this lease doing at t" is a binary search in lists sorted once
        (``_Index``), so the report grows as n log n in calls, spans and lease events
        (it was quadratic: > 15 min at 64 slots)."""
        assert self.phase_start is not None
        t0 = self.phase_start
        t1 = t0 + phase_s
        first = min(s for s, _ in spans)
        last = max(e for _, e in spans)
        index = _Index(self, spans)
        cuts = {t0, t1, first, last}
        for s, e in spans:
            cuts |= {s, e}
        for c in self.calls:
            cuts |= {t for t in (c.asked, c.got, c.http_start, c.http_end, c.done) if t}
        for k in self.chunks:
            cuts |= {t for t in (k.called, k.body_start, k.body_end, k.returned) if t}
        times = sorted(t for t in cuts if t0 <= t <= t1)
        idle: dict[str, float] = defaultdict(float)
        waits: list[tuple[float, float, str]] = []  # a call waits while a slot is free
        by_lease: dict[str, float] = defaultdict(float)  # those waits by the idle lease's state
        served = 0.0
        for a, b in itertools.pairwise(times):
            if b <= a:
                continue
            mid = (a + b) / 2
            open_ = index.open(mid)
            served += open_ * (b - a)
            free = max(0, slots - open_)
            if not free:
                continue
            if mid < first:
                idle[index.start_reason(mid)] += free * (b - a)
                continue
            if mid >= last:
                idle["end: after the last request"] += free * (b - a)
                continue
            for reason, count in index.states(mid, open_):
                take = min(free, count)
                idle[reason] += take * (b - a)
                if take and reason.startswith("a call waits"):
                    states = index.lease_states(mid)
                    waits.append((a, b, index.who_waits(mid, states)))
                    for state, n in _idle_leases(states).items():
                        by_lease[state] += min(take, n) * (b - a)
                free -= take
                if not free:
                    break
            if free:
                idle["no call asking, no task starting (e.g. between a case's stages)"] += free * (
                    b - a
                )
        lines = [
            f"phase {phase_s:.3f} s x {slots} slots = {phase_s * slots:.3f} slot-s; "
            f"served {served:.3f} ({served / (phase_s * slots):.3f}); idle by cause:"
        ]
        for reason, seconds in sorted(idle.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {seconds:7.3f} slot-s  {reason}")
        lines.append(
            "calls: "
            + ", ".join(
                f"{kind} {sum(1 for c in self.calls if c.kind == kind)}"
                for kind in ("lane", "spare")
            )
            + f"; chunks {len(self.chunks)}; start: phase -> first request "
            f"{first - t0:.3f} s, last request -> phase end {t1 - last:.3f} s"
        )
        merged: list[list[Any]] = []
        for a, b, who in waits:
            if merged and abs(merged[-1][1] - a) < 1e-9 and merged[-1][2] == who:
                merged[-1][1] = b
            else:
                merged.append([a, b, who])
        merged.sort(key=lambda w: w[0] - w[1])
        held = [c for c in self.calls if c.got and c.http_start and c.http_end and c.done]
        for kind in ("lane", "spare"):
            sent = sorted(c.http_start - c.got for c in held if c.kind == kind)
            if sent:
                lines.append(
                    f"  {kind} calls, got -> request sent: median "
                    f"{1000 * sent[len(sent) // 2]:.1f} ms, p90 "
                    f"{1000 * sent[int(len(sent) * 0.9)]:.1f}, max {1000 * sent[-1]:.1f}, "
                    f"sum {sum(sent):.3f} s"
                )
        slow = sorted(
            (c for c in held if c.kind == "lane" and c.http_start - c.got >= MIN_GAP_S),
            key=lambda c: c.got - c.http_start,
        )
        for c in slow[:WAITS_SHOWN]:
            mid = (c.got + c.http_start) / 2
            lines.append(
                f"    lane call {c.case} waited for its lane's slot {c.got - t0:.3f}"
                f"+{1000 * (c.http_start - c.got):.0f} ms; at its middle: "
                f"{index.who_waits(mid, index.lease_states(mid))}"
            )
        if held:
            n = len(held)
            lines.append(
                "a call holding its slot, mean ms: got -> request sent "
                f"{1000 * sum(c.http_start - c.got for c in held) / n:.1f}, request -> "
                f"response (client) {1000 * sum(c.http_end - c.http_start for c in held) / n:.1f}"
                f" vs at the host {1000 * sum(e - s for s, e in spans) / len(spans):.1f}, "
                f"response -> call done {1000 * sum(c.done - c.http_end for c in held) / n:.1f}"
            )
        lines.append(
            "waits while a slot was free, by the state of the run's idle leases: "
            + ", ".join(f"{k} {v:.3f} slot-s" for k, v in sorted(by_lease.items()))
        )
        lines.append("longest waits while a slot was free (start s, ms, waiting / leases):")
        for a, b, who in merged[:WAITS_SHOWN]:
            lines.append(f"  {a - t0:.3f} {1000 * (b - a):5.1f}  {who}")
        lines.append("chunks (called, body, first call, last call, body end, returned; s):")
        sent_by_case: dict[str, list[Call]] = defaultdict(list)
        for c in self.calls:
            if c.http_start:
                sent_by_case[c.case].append(c)
        for k in self.chunks:
            mine = [c for case in dict.fromkeys(k.cases) for c in sent_by_case.get(case, ())]
            lines.append(
                f"  {','.join(k.cases)[:30]:30} "
                + " ".join(
                    f"{(t - t0) if t else float('nan'):6.3f}"
                    for t in (
                        k.called,
                        k.body_start,
                        min((c.http_start for c in mine), default=None),
                        max((c.http_end for c in mine), default=None),
                        k.body_end,
                        k.returned,
                    )
                )
            )
        lines.append("gaps between a lease's requests (client side), by what came between:")
        for kind, gaps in sorted(self._gap_kinds().items(), key=lambda kv: -sum(kv[1])):
            gaps.sort()
            lines.append(
                f"  {kind:40} n {len(gaps):4} total {sum(gaps):6.3f} s  median "
                f"{1000 * gaps[len(gaps) // 2]:6.1f} ms  max {1000 * gaps[-1]:6.1f} ms"
            )
        lines.extend(self._gantt(t0, t1, index))
        lines.append(f"lease gaps >= {MIN_GAP_S * 1000:.0f} ms (start, length, before/after):")
        for lease, gaps in self._lease_gaps(t0, index).items():
            lines.append(f"  lease {lease[:8]}: " + "; ".join(gaps))
        return "\n".join(lines)

    def _gantt(self, t0: float, t1: float, index: _Index) -> list[str]:
        """One row per lease, one character per ``GANTT_S`` (or more, at most
        ``GANTT_MAX`` characters): the case's last digit while
        its request is out (``A`` an assembly, ``R`` a reduce), ``.`` held by a lane
        between calls, ``p`` parked, blank not held; then the requests open at the host."""
        step = max(GANTT_S, (t1 - t0) / GANTT_MAX)
        steps = int((t1 - t0) / step) + 1
        leases = sorted({c.lease for c in self.calls} - {"?"})
        rows = [f"slots over time, {1000 * step:.0f} ms a character:"]
        for lid in leases:
            row = []
            for i in range(steps):
                t = t0 + (i + 0.5) * step
                call = index.call_of(lid, t)
                state = index.lease_state(lid, t)
                if state.endswith("-http") and call is not None:
                    mark = {"Join": "A", "Combi": "R"}.get(call.stage.split(" ")[0], "")
                    row.append(mark or call.case[-1])
                elif state.endswith("-call"):
                    row.append(",")
                else:
                    row.append({"lane-idle": ".", "parked": "p"}.get(state, " "))
            rows.append(f"  {lid[:4]} |{''.join(row)}|")
        opened = "".join(str(index.open(t0 + (i + 0.5) * step)) for i in range(steps))
        rows.append(f"  host |{opened}|")
        return rows

    def _gap_kinds(self) -> dict[str, list[float]]:
        """Each lease's gaps between one request's end and the next one's start, by
        what came between: the same case's next call (its stage or not), the next case
        of the same chunk, another chunk's case."""
        chunk_of = {case: i for i, k in enumerate(self.chunks) for case in k.cases}
        uses: dict[str, list[Call]] = defaultdict(list)
        for c in self.calls:
            if c.http_start and c.http_end:
                uses[c.lease].append(c)
        kinds: dict[str, list[float]] = defaultdict(list)
        for calls in uses.values():
            calls.sort(key=lambda c: c.http_start or 0.0)
            for before, after in itertools.pairwise(calls):
                if before.case == after.case:
                    same = before.stage.split()[:2] == after.stage.split()[:2]
                    kind = "same case, " + ("same stage" if same else "next stage")
                elif chunk_of.get(before.case) == chunk_of.get(after.case):
                    kind = "next case of the chunk"
                else:
                    kind = "another chunk's case"
                kind += f" ({before.kind}->{after.kind})"
                kinds[kind].append((after.http_start or 0.0) - (before.http_end or 0.0))
        return kinds

    def _lease_gaps(self, t0: float, index: _Index) -> dict[str, list[str]]:
        uses: dict[str, list[Call]] = defaultdict(list)
        for c in self.calls:
            if c.http_start and c.http_end:
                uses[c.lease].append(c)
        out: dict[str, list[str]] = {}
        for lease, calls in uses.items():
            calls.sort(key=lambda c: c.http_start or 0.0)
            gaps = []
            for before, after in itertools.pairwise(calls):
                gap = (after.http_start or 0.0) - (before.http_end or 0.0)
                if gap >= MIN_GAP_S:
                    moves = index.moves(lease, before.http_end or 0.0, after.http_start or 0.0)
                    gaps.append(
                        f"{(before.http_end or 0.0) - t0:.2f}+{gap * 1000:.0f}ms "
                        f"{before.case}/{before.kind}->{after.case}/{after.kind}"
                        + (f" [{','.join(moves)}]" if moves else "")
                    )
            kinds = defaultdict(int)
            for c in calls:
                kinds[c.kind] += 1
            head = (
                f"{len(calls)} calls ({dict(kinds)}), "
                f"{(calls[0].http_start or 0.0) - t0:.2f}-{(calls[-1].http_end or 0.0) - t0:.2f}"
            )
            out[lease] = [head, *gaps]
        return out


def _or_inf(t: float | None) -> float:
    return INF if t is None else t


class _Stabs:
    """How many half-open intervals [start, end) hold a time ``t``: starts at or before
    ``t`` less ends at or before it, two binary searches in lists sorted once (an
    interval that ends where it starts, or before, holds no time and is left out)."""

    def __init__(self, intervals: Iterable[tuple[float, float]]) -> None:
        kept = [(s, e) for s, e in intervals if e > s]
        self.starts = sorted(s for s, _ in kept)
        self.ends = sorted(e for _, e in kept)

    def __call__(self, t: float) -> int:
        return bisect.bisect_right(self.starts, t) - bisect.bisect_right(self.ends, t)


class _Owners:
    """Which of some intervals [start, end) holds a time, the first in list order where
    several do: the intervals swept once into disjoint pieces, each with its owner."""

    def __init__(self, intervals: list[tuple[float, float, int]]) -> None:
        intervals = sorted((s, e, i) for s, e, i in intervals if e > s)
        points = sorted({s for s, _, _ in intervals} | {e for _, e, _ in intervals if e < INF})
        self.starts: list[float] = []
        self.owners: list[int | None] = []
        active: list[tuple[int, float]] = []  # (list index, end): the lowest index on top
        j = 0
        for p in points:
            while j < len(intervals) and intervals[j][0] <= p:
                heapq.heappush(active, (intervals[j][2], intervals[j][1]))
                j += 1
            while active and active[0][1] <= p:
                heapq.heappop(active)  # ended; one below the top is dropped when it surfaces
            self.starts.append(p)
            self.owners.append(active[0][0] if active else None)

    def __call__(self, t: float) -> int | None:
        i = bisect.bisect_right(self.starts, t) - 1
        return self.owners[i] if i >= 0 else None


class _Index:
    """A timeline's calls, chunks, lease events and the host's spans, sorted once for
    the questions ``report`` asks at each time of its sweep."""

    def __init__(self, timeline: Timeline, spans: list[list[float]]) -> None:
        calls, chunks = timeline.calls, timeline.chunks
        self.calls = calls
        self.open = _Stabs((s, e) for s, e in spans)
        # a call waits from its ask until it has a slot or is done
        wait_ends = [min(_or_inf(c.got), _or_inf(c.done)) for c in calls]
        self.waiting = _Stabs((c.asked, end) for c, end in zip(calls, wait_ends, strict=True))
        self.holding = _Stabs((c.got, _or_inf(c.done)) for c in calls if c.got is not None)
        self.starting = _Stabs((k.called, _or_inf(k.body_start)) for k in chunks)
        self.ending = _Stabs(
            (k.body_end, _or_inf(k.returned)) for k in chunks if k.body_end is not None
        )
        self.lanes_busy = _Stabs(
            (k.body_start, _or_inf(k.body_end)) for k in chunks if k.body_start is not None
        )
        self.first_body = min((k.body_start for k in chunks if k.body_start), default=INF)
        self.first_called = min((k.called for k in chunks), default=None)
        # the calls waiting at a time, swept forwards (restarted for an earlier time)
        waits = [(c.asked, end, i) for i, (c, end) in enumerate(zip(calls, wait_ends, strict=True))]
        waits = [w for w in waits if w[1] > w[0]]
        self._asks = sorted((s, i) for s, _, i in waits)
        self._gets = sorted((e, i) for _, e, i in waits)
        self._wait_t = -INF
        self._waiting: set[int] = set()
        self._asked = self._got = 0
        # per lease: the call holding it, its moves (time, list index, what) in time order
        held: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
        for i, c in enumerate(calls):
            if c.got is not None:
                held[c.lease].append((c.got, c.done or INF, i))
        self._holder = {lid: _Owners(intervals) for lid, intervals in held.items()}
        moves: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
        for i, (when, lid, what) in enumerate(timeline.lease_events):
            moves[lid].append((when, i, what))
        self._moves = {lid: sorted(m) for lid, m in moves.items()}
        self._move_times = {lid: [when for when, _, _ in m] for lid, m in self._moves.items()}
        self._last_move: dict[str, list[int]] = {}  # index into _moves: the latest in list order
        for lid, m in self._moves.items():
            best, latest = 0, []
            for j, (_, i, _) in enumerate(m):
                if i > m[best][1]:
                    best = j
                latest.append(best)
            self._last_move[lid] = latest
        self.leases = sorted(set(moves) | {c.lease for c in calls})

    def start_reason(self, t: float) -> str:
        if not self.first_body <= t:
            if self.first_called is None or t < self.first_called:
                return "start: reserving slots, before the host's task run and its chunks"
            return "start: the first chunks starting"
        return "start: chunk body running, before its first request"

    def states(self, t: float, open_: int) -> list[tuple[str, int]]:
        """What might explain free slots at ``t`` (``open_`` requests at the host), most
        direct first, with how many."""
        holding = self.holding(t)  # calls holding a slot (lane or spare) at t
        return [
            (
                "call holds a slot, its request not at the host (client side)",
                max(0, holding - open_),
            ),
            ("a call waits for a slot while one is free", self.waiting(t)),
            ("chunk starting (called -> body)", self.starting(t)),
            ("chunk ending (body end -> returned: its writes flushed)", self.ending(t)),
            (
                "a chunk body runs, none of its calls asking (stage boundary, writes)",
                self.lanes_busy(t),
            ),
        ]

    def call_of(self, lease: str, t: float) -> Call | None:
        """The call holding ``lease`` at ``t`` (the first in list order)."""
        owners = self._holder.get(lease)
        i = owners(t) if owners is not None else None
        return None if i is None else self.calls[i]

    def lease_state(self, lease: str, t: float) -> str:
        c = self.call_of(lease, t)
        if c is not None:
            http = c.http_start and c.http_start <= t < (c.http_end or INF)
            return f"{c.case}{'-http' if http else '-call'}"
        times = self._move_times.get(lease, [])
        j = bisect.bisect_right(times, t)
        if not j:
            return "-"
        last = self._moves[lease][self._last_move[lease][j - 1]][2]
        return {"unparked": "lane-idle", "taken": "lane-idle"}.get(last, last)

    def lease_states(self, t: float) -> dict[str, str]:
        return {lid: self.lease_state(lid, t) for lid in self.leases if lid != "?"}

    def moves(self, lease: str, start: float, end: float) -> list[str]:
        """The lease's moves from ``start`` to ``end`` (both included), in list order."""
        times = self._move_times.get(lease, [])
        inside = self._moves.get(lease, [])[
            bisect.bisect_left(times, start) : bisect.bisect_right(times, end)
        ]
        return [what for _, _, what in sorted(inside, key=lambda m: m[1])]

    def who_waits(self, t: float, states: dict[str, str]) -> str:
        """The calls waiting at ``t`` and what each lease of the run is doing."""
        if t < self._wait_t:  # an earlier time: sweep again from the start
            self._waiting, self._asked, self._got = set(), 0, 0
        self._wait_t = t
        while self._asked < len(self._asks) and self._asks[self._asked][0] <= t:
            self._waiting.add(self._asks[self._asked][1])
            self._asked += 1
        while self._got < len(self._gets) and self._gets[self._got][0] <= t:
            self._waiting.discard(self._gets[self._got][1])
            self._got += 1
        waiting = [f"{self.calls[i].case}>{self.calls[i].kind}" for i in sorted(self._waiting)]
        return f"{' '.join(waiting)} / " + " ".join(
            f"{lid[:4]}:{state}" for lid, state in states.items()
        )


def _idle_leases(states: dict[str, str]) -> dict[str, int]:
    """The run's leases not in a call at a time, by state (parked, lane-idle, ...)."""
    counts: dict[str, int] = defaultdict(int)
    for state in states.values():
        if not state.startswith("d") and state not in ("released", "-"):
            counts[state] += 1
    return counts
