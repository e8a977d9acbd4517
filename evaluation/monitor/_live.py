"""A run's live state, written while it goes (``run_live``): the stage, generations done
of the total with the rate and ETA the progress bar shows, cases in flight per host
(against its slots: a lane's request is in flight while the lane holds a slot), the
hosts whose lanes wait for a slot (since when, and who holds them), failures so far by
reason and the current GPU readings.

``LiveRun`` keeps the figures in memory as the run reports them and writes its row at
most every ``interval_s`` seconds (and at once on a stage change or when the last
generation is stored): one small upsert, so a page that polls it never touches the
run's generations. A change the interval held back is pending, never dropped: it is
written by the next event once the interval has passed, by ``tick`` (``keep_written``
calls it every interval while generation stalls) and by ``flush`` at the stage's end.

A host with requests in flight and no answer stored for ``quiet_after_s`` (a hung
server accepts the connection and never answers) is said through ``say``, naming the
host, how long, and ``timeouts`` (what will end the wait); again each time the silence
doubles. A host whose answers take longer (a CPU server at ~35 s a request) is said only
past twice the longest silence it has ended with an answer: a slow but healthy server
is not warned of once a generation. A simulated host (``never_hung``) is never said: it
sleeps the latencies it simulates (a pipeline case's ~80 s with `--time-scale 1`) and
cannot hang. The CLI's bar says it too, but only on a terminal;
this line is in the log. Lanes waiting for a slot send nothing: a host whose lanes have
waited ``SLOW_WAIT_S`` is said once a wait, naming who holds its slots
(``evaluation.run._slot_waits``). The row lists a host's wait once it has lasted
``WAIT_SHOWN_AFTER_S`` (written then, by ``tick``, even while nothing else changes): a
lane waits for a moment after each failed try, for the slot given back to be taken
again (one slot write each, and up to seconds on a loaded server), and a row written in
such a moment said, until the next write, "1 lane waiting 5 s so far for a free slot
... (held by no other run listed on this machine: one on another machine?)" with every
slot free (newcomer M2: a host failing half its requests).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from evaluation.run._rate import format_duration
from evaluation.run._slot_waits import Holders, SlotLane, SlotWaits
from evaluation.storage.db import insert_ignoring_conflicts, session_scope
from evaluation.storage.models import RunLive, utcnow

STAGES = ("load", "generate", "score", "compare", "report")
WRITE_INTERVAL_S = 2.0
QUIET_AFTER_S = 30.0  # no answer from a host with requests in flight: said after this
WAIT_SHOWN_AFTER_S = 10.0  # a host's lanes waiting for a slot: in the row after this
REASON_CHARS = 100
_EMPTY: dict[str, Any] = {
    "done": 0, "total": 0, "failed": 0, "per_s": None, "eta_s": None,
    "in_flight": {}, "waiting": {}, "slots": {}, "failures": {}, "gpu": [],
}  # fmt: skip

_UPDATED = ("stage", "done", "total", "failed", "per_s", "eta_s", "in_flight", "waiting",
            "slots", "failures", "gpu", "updated_at")  # fmt: skip


def failure_reason(error: str | None) -> str:
    """The reason a failed generation is counted under: its error's first line, cut."""
    line = (error or "unknown error").strip().splitlines()[0] if error else "unknown error"
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def set_stage(engine: Engine, experiment: str, stage: str, *, started: bool = False) -> None:
    """Record that ``experiment``'s run reached ``stage`` (one of ``STAGES``); ``started``
    resets the row for a new run (the figures of the one before are not this one's)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    now = utcnow()
    row: dict[str, Any] = {"experiment": experiment, "stage": stage, "updated_at": now}
    columns: tuple[str, ...] = ("stage", "updated_at")
    if stage != "generate":  # what was in flight was the generate stage's: none now
        row["in_flight"], row["waiting"] = {}, {}
        columns = (*columns, "in_flight", "waiting")
    if started:
        row |= _EMPTY | {"started_at": now}
        columns = (*_UPDATED, "started_at")
    with session_scope(engine) as session:
        insert_ignoring_conflicts(session, RunLive, [row], update_columns=columns)


@dataclass
class LiveRun:
    """The live figures of one run's generation stage; see the module docstring.
    ``gpu`` reads the current GPU readings (a list of dicts, one per GPU or host) when a
    row is written; ``clock`` is monotonic seconds (a test gives its own); ``whose(host)``:
    who holds a host's slots besides this run; ``slot_timeout_s``: how long a lane
    waits for a slot before it gives up."""

    engine: Engine
    experiment: str
    total: int
    slots: Mapping[str, int] = field(default_factory=dict)
    gpu: Callable[[], list[dict[str, Any]]] = list
    interval_s: float = WRITE_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    done: int = 0
    failed: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    per_s: float | None = None
    eta_s: float | None = None
    say: Callable[[str], None] | None = None
    timeouts: str = ""  # how a request's wait ends, e.g. "each try gives up after 120 s"
    quiet_after_s: float = QUIET_AFTER_S
    never_hung: frozenset[str] = frozenset()  # simulated hosts: their silence is by design
    whose: Callable[[str], Holders] = lambda host: ()
    slot_timeout_s: float | None = None
    _waits: SlotWaits = field(init=False)
    _written: float = float("-inf")
    _pending: bool = False
    _shown: dict[str, tuple[int, float]] = field(default_factory=dict)  # waits written
    _heard: dict[str, float] = field(default_factory=dict)  # host -> last answer or send
    _paused: dict[str, float] = field(default_factory=dict)  # host -> none in flight since
    _said: dict[str, float] = field(default_factory=dict)  # host -> silence last said
    _slowest: dict[str, float] = field(default_factory=dict)  # host -> longest answered

    def __post_init__(self) -> None:
        self._waits = SlotWaits(
            clock=self.clock,
            say=self.say,
            whose=self.whose,
            give_up_s=self.slot_timeout_s,
            slots=dict(self.slots),
            on_holding=self._holding,
            on_change=self._changed,
        )

    def start(self) -> None:
        """The generate stage begins: written at once."""
        set_stage(self.engine, self.experiment, "generate")
        self.write()

    def lane(self, host: str) -> SlotLane:
        """A lane's chunk on ``host``, told of its slot by the lane (``LaneWatch``): its
        request is in flight while it holds one; ``close`` it when the chunk ends."""
        return self._waits.lane(host)

    def listed(self) -> AbstractContextManager[None]:
        """While the block runs, the terminal's line counts this run's lanes
        (``evaluation.run._slot_waits.lanes_now``)."""
        return self._waits.listed()

    def _holding(self, host: str, lanes: int) -> None:
        """``lanes`` of ``host`` hold a slot now: their requests are in flight. A host's
        silence counts only while it has requests in flight: from its first one after an
        answer; a try that failed and the lane's wait for a slot after it pause it."""
        now = self.clock()
        if lanes and not self.in_flight[host]:
            paused = self._paused.pop(host, None)
            if paused is None:  # its silence counts from now
                self._heard[host] = now
                self._said.pop(host, None)
            else:  # unanswered since: it goes on, less the pause
                self._heard[host] += now - paused
        elif not lanes and self.in_flight[host]:
            self._paused[host] = now
        self.in_flight[host] = lanes

    def stored(
        self, errors: list[str | None], per_s: float | None = None, eta_s: float | None = None
    ) -> None:
        """Generations were stored: one entry per generation, its error (None: ok)."""
        self.done += len(errors)
        for error in errors:
            if error is not None:
                self.failed += 1
                self.failures[failure_reason(error)] += 1
        self.per_s, self.eta_s = per_s, eta_s
        if self.done >= self.total:
            self.write()
        else:
            self._changed()

    def answered(self, hosts: set[str]) -> None:
        """Generations from ``hosts`` were stored: they are not silent."""
        now = self.clock()
        for host in hosts:
            if host in self._heard:
                waited = now - self._heard[host]
                self._slowest[host] = max(self._slowest.get(host, 0.0), waited)
            self._heard[host] = now
            self._said.pop(host, None)
            self._paused.pop(host, None)

    def _quiet(self) -> None:
        """Say each host in flight that answered nothing for ``quiet_after_s``."""
        if self.say is None:
            return
        now = self.clock()
        for host, n in self.in_flight.items():
            silent = now - self._heard.get(host, now)
            said, slowest = self._said.get(host, 0.0), self._slowest.get(host, 0.0)
            if not n or host in self.never_hung:
                continue
            if silent < max(self.quiet_after_s, 2 * said, 2 * slowest):
                continue
            self._said[host] = silent
            waiting = "1 request waits" if n == 1 else f"{n} requests wait"
            self.say(
                f"no answer from host '{host}' for {format_duration(silent)} ({waiting}; "
                f"a hung or overloaded server?); {self.timeouts or 'the request timeout ends it'}"
            )

    def _changed(self) -> None:
        self._pending = True
        self.tick()

    def tick(self) -> None:
        """Write what is pending once the interval since the last write has passed."""
        self._quiet()
        self._waits.tick()
        if self._waits.lasting(WAIT_SHOWN_AFTER_S) != self._shown:
            self._pending = True  # a wait now long enough to show, or one that ended
        if self._pending and self.clock() - self._written >= self.interval_s:
            self.write()

    def flush(self) -> None:
        """Write what is pending now (the stage ends)."""
        if self._pending:
            self.write()

    async def keep_written(self, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """``tick`` every interval until cancelled (with the stage): a stall writes
        what the interval held back."""
        while True:
            await sleep(self.interval_s)
            self.tick()

    def write(self) -> None:
        self._written = self.clock()
        self._pending = False
        row = {
            "experiment": self.experiment,
            "stage": "generate",
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
            "per_s": self.per_s,
            "eta_s": self.eta_s,
            "in_flight": {h: n for h, n in self.in_flight.items() if n},
            "waiting": self._waiting(),
            "slots": dict(self.slots),
            "failures": dict(self.failures.most_common(20)),
            "gpu": self.gpu(),
            "updated_at": utcnow(),
        }
        with session_scope(self.engine) as session:
            insert_ignoring_conflicts(session, RunLive, [row], update_columns=_UPDATED)

    def _waiting(self) -> dict[str, dict[str, Any]]:
        """The live row's hosts whose lanes have waited ``WAIT_SHOWN_AFTER_S`` for a slot:
        how many, since when (UTC), and who holds the host's slots (``[[run in words,
        slots]]``)."""
        now, at = self.clock(), utcnow()
        waits = self._waits.waiting(WAIT_SHOWN_AFTER_S)
        self._shown = {host: (wait.lanes, wait.since) for host, wait in waits.items()}
        return {
            host: {
                "lanes": wait.lanes,
                "since": (at - timedelta(seconds=now - wait.since)).isoformat(timespec="seconds"),
                "held_by": [list(holder) for holder in wait.held_by],
            }
            for host, wait in waits.items()
        }


def gpu_readings(
    readings: Sequence[Any], vram: Mapping[tuple[str, str], int]
) -> list[dict[str, Any]]:
    """The live row's GPU figures: each of this machine's GPUs as NVML reads it now
    (``readings``: ``evaluation.run.Sample.readings``), then the VRAM each Ollama host
    reported for a model in ``/api/ps`` (``vram``: (host, model) -> bytes)."""
    out: list[dict[str, Any]] = [
        {
            "name": f"gpu{i} (the machine running it)",
            "util_pct": r.util_pct,
            "memory_used_bytes": r.memory_used_bytes,
            "power_w": r.power_w,
        }
        for i, r in enumerate(readings)
    ]
    out += [{"host": h, "model": m, "vram_bytes": b} for (h, m), b in sorted(vram.items())]
    return out
