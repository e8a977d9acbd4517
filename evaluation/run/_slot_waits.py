"""Where a run's lanes stand with their hosts' slots (``SlotWaits``): how many hold one
(their requests go out) and how many wait for one, since when, across the run's process
and its lane workers; and the one line per host that says a wait has lasted.

Each lane's chunk has a ``SlotLane``: the lane's slot (``tasks.adapters.lane_slot``)
tells it when the lane starts waiting for a slot, when it holds one and when it holds
none (an attempt failed, its slot lent to a pipeline's call, the chunk over); a lane in
a worker process sends the changes back through the worker's pipe (``_workers``).
Counting a chunk's request as sent when the chunk started (before its lane held a
slot) made a run whose lanes waited for another run's slots warn of a hung server that
answered in 100 ms; and each lane, in each worker process, said its own wait (8 lines
for one host). Here a host's wait is said once, by the run's process, naming who holds
the slots where the slot registry knows (``whose``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from evaluation.run._rate import format_duration
from evaluation.wording import counted

SLOW_WAIT_S = 30.0  # a host's lanes waiting this long for a slot: said, once a wait
TURN_S = 5.0  # a slot a run has held this long goes to another run here waiting for one
_LISTED: list[SlotWaits] = []  # this process's runs' lanes while they generate

Holders = Sequence[tuple[str, int]]
"""Who holds a host's slots: (which run, in words; how many slots), the run's own lanes
as ``TAKING`` and ``HOLDING``."""
#: In ``Holders``: the run's own lanes whose take of a slot is written now or waits for
#: its turn (a run's slot writes go to the Prefect server one at a time), how many.
TAKING = "(this run's take)"
#: In ``Holders``: the slots the run itself holds (its lanes', parked, its calls').
HOLDING = "(this run)"


class LaneWatch(Protocol):
    """What a lane tells of its slot: it waits for one, holds one, holds none."""

    def waits(self) -> None: ...

    def holds(self) -> None: ...

    def holds_none(self) -> None: ...


@dataclass(frozen=True)
class HostWait:
    """A host's lanes waiting for a slot: how many, since when (the clock's seconds), and
    who holds its slots (``Holders``; empty: nobody the registry lists)."""

    lanes: int
    since: float
    held_by: Holders = ()


def held_by_words(held_by: Holders, slots: int | None = None) -> str:
    """e.g. "held by another run: 'nightly' (process 4242 on gpu-box), 8 of its 8"; the
    run's own first: "this run's own take of 12 slots not answered yet: ...", "held by
    this run itself, 60 of its 64". Where no other run the slot registry lists holds
    them, and the run's own lanes do not explain the wait, says so (another machine's
    run?). It said that too while the lanes waited for their own run's take of the
    slots, queued behind the run's other slot writes (1,024 lanes: "held by no other
    run" for 31 s)."""
    own = {who: n for who, n in held_by if who in (TAKING, HOLDING)}
    others = [(who, n) for who, n in held_by if who not in own]
    of = f" of its {slots}" if slots else ""
    parts = []
    if taking := own.get(TAKING, 0):
        parts.append(
            f"this run's own take of {counted(taking, 'slot')} not answered yet: "
            "its slot writes go to the Prefect server one at a time"
        )
    if holding := own.get(HOLDING, 0):
        parts.append(f"held by this run itself, {holding}{of}")
    if others:
        runs = "another run" if len(others) == 1 else f"{len(others)} other runs"
        parts.append(f"held by {runs}: " + ", ".join(f"{who}, {n}{of}" for who, n in others))
    elif not taking and not (slots and holding >= slots):
        rest = "the rest" if holding else "held"
        parts.append(f"{rest} by no other run listed on this machine: one on another machine?")
    return "; ".join(parts)


def wait_words(
    host: str, lanes: int, held_by: Holders, waited_s: float, slots: int | None = None
) -> str:
    """What says a host's wait, e.g. "2 lanes waiting 31 s so far for a free slot of host
    'gpu-a' (held by another run: ...)"; ``slots``: the host's."""
    return (
        f"{counted(lanes, 'lane')} waiting {format_duration(waited_s)} so far for a free "
        f"slot of host '{host}' ({held_by_words(held_by, slots)})"
    )


@dataclass
class SlotWaits:
    """The slots of one run's lanes, per host (see the module's text). ``say``: where the
    line of a lasting wait goes; ``whose(host)``: who holds the host's slots besides the
    run; ``give_up_s``: when a lane's wait ends; ``on_holding(host, lanes)``: the number
    of lanes holding a slot of ``host`` changed; ``on_change``: anything changed. Its
    owner calls ``tick`` every few seconds."""

    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] | None = None
    whose: Callable[[str], Holders] = lambda host: ()
    give_up_s: float | None = None
    slots: dict[str, int] = field(default_factory=dict)
    on_holding: Callable[[str, int], None] = lambda host, lanes: None
    on_change: Callable[[], None] = lambda: None
    holding: Counter[str] = field(default_factory=Counter)
    _waiting: dict[str, dict[int, float]] = field(default_factory=dict)  # lane -> since
    _said: set[str] = field(default_factory=set)  # hosts whose wait now was said
    _lanes: int = 0

    def lane(self, host: str) -> SlotLane:
        """A lane's chunk on ``host``: holds no slot and waits for none yet."""
        self._lanes += 1
        return SlotLane(self, host, self._lanes)

    def waiting(self, lasted_s: float = 0.0) -> dict[str, HostWait]:
        """The hosts whose lanes wait for a slot now, those whose wait has lasted
        ``lasted_s`` or more (``whose`` asked for each)."""
        return {
            host: HostWait(lanes, since, tuple(self.whose(host)))
            for host, (lanes, since) in self.lasting(lasted_s).items()
        }

    def lasting(self, lasted_s: float = 0.0) -> dict[str, tuple[int, float]]:
        """``waiting``'s hosts as (lanes, since), without asking who holds the slots."""
        now = self.clock()
        return {
            host: (len(lanes), since)
            for host, lanes in self._waiting.items()
            if now - (since := min(lanes.values())) >= lasted_s
        }

    def tick(self) -> None:
        """Say each host whose lanes have waited ``SLOW_WAIT_S`` for a slot, once a wait
        (a wait ends when none of its lanes waits)."""
        if self.say is None:
            return
        now = self.clock()
        for host, lanes in self._waiting.items():
            since = min(lanes.values())
            if host in self._said or now - since < SLOW_WAIT_S:
                continue
            self._said.add(host)
            held_by = self.whose(host)
            line = wait_words(host, len(lanes), held_by, now - since, self.slots.get(host))
            if any(who not in (TAKING, HOLDING) for who, _ in held_by):
                line += (
                    "; runs on this machine take turns: a run hands a slot over between its "
                    f"requests once it has held it {format_duration(TURN_S)}"
                )
            if self.give_up_s is not None:
                line += (
                    f"; each gives up after {format_duration(self.give_up_s)} of waiting "
                    "with no other run on this machine using the host"
                )
            self.say(line)

    @contextmanager
    def listed(self) -> Iterator[None]:
        """While the block runs, ``lanes_now`` counts these lanes."""
        _LISTED.append(self)
        try:
            yield
        finally:
            _LISTED.remove(self)

    async def keep_ticking(self, every_s: float = 1.0) -> None:
        """``tick`` every ``every_s`` until cancelled (an owner that ticks nothing else:
        ``plan --probe``)."""
        while True:
            await asyncio.sleep(every_s)
            self.tick()

    def _moved(self, lane: SlotLane, before: str, after: str) -> None:
        host = lane.host
        if before == "holds" or after == "holds":
            self.holding[host] += 1 if after == "holds" else -1
            self.on_holding(host, self.holding[host])
        if after == "waits":
            self._waiting.setdefault(host, {})[lane.id] = self.clock()
        elif before == "waits":
            lanes = self._waiting[host]
            del lanes[lane.id]
            if not lanes:
                del self._waiting[host]
                self._said.discard(host)
        self.on_change()


def lanes_now() -> tuple[int, int]:
    """The lanes of this process's runs now (``SlotWaits.listed``): how many hold a slot
    (their requests are in flight) and how many wait for one (the terminal's generating
    line says both: it counted a lane waiting for another run's slot as in flight)."""
    holding = sum(n for waits in _LISTED for n in waits.holding.values())
    waiting = sum(len(lanes) for waits in _LISTED for lanes in waits._waiting.values())
    return holding, waiting


class SlotLane:
    """One lane's chunk's slot, as the lane tells it (``LaneWatch``): ``waits``,
    ``holds``, ``holds_none``; ``close`` when the chunk is over (what a worker says of
    it later is moot)."""

    def __init__(self, waits: SlotWaits, host: str, lane_id: int) -> None:
        self._waits = waits
        self.host = host
        self.id = lane_id
        self._state = "none"
        self._closed = False

    def waits(self) -> None:
        self._move("waits")

    def holds(self) -> None:
        self._move("holds")

    def holds_none(self) -> None:
        self._move("none")

    def close(self) -> None:
        self._move("none")
        self._closed = True

    def __enter__(self) -> SlotLane:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _move(self, state: str) -> None:
        if self._closed or state == self._state:
            return
        before, self._state = self._state, state
        self._waits._moved(self, before, state)
