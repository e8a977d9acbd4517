"""The terminal display of `evalflow run`: one line per phase as it happens (preparing,
checking hosts, starting Prefect, generating, scoring, comparing, writing the report),
each with its time. The generating line has the bar, done/total, the rate (per minute
below one a second), the requests in flight, the ETA and the failures so far (where
"0 failed" has no room, once there are some; before the first request, what it waits on:
lane workers starting; once nothing finishes for a while, what is in flight, and that a
model may be loading where all the work left waits on the first answer of models that
have not answered yet), its time counted from the start of generation to its last
generation, after a "·" (it read as the age of the requests in flight beside it: "1 in
flight 1 min 45 s"). Drawn on stderr beside (not inside) the log, only on a terminal and
not with -q; the leaderboard is printed after it. The rate and ETA are the ones the log
lines print (``tasks.progress.Reading``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.default_styles import DEFAULT_STYLES
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from evaluation.run._rate import format_duration, format_rate

if TYPE_CHECKING:
    from tasks.progress import Reading

# rich's bar colours are RGB: a 16-colour terminal gets both the finished bar's green
# and the empty bar's grey23 as the same grey (SGR 90), so a complete bar looked empty.
# Named colours keep their hue on every colour system.
_BAR_THEME = Theme(
    {k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("bar.", "progress."))}
    | {"bar.complete": "magenta", "bar.finished": "green", "bar.pulse": "magenta"}
)

GENERATING = "generating"
#: The flow's step names (``tasks.progress.announce_step``) as the display words them.
_PHASE_NAMES = {"writing report": "writing the report", "comparing configs": "comparing"}


def _in_flight_now() -> int:
    """The run's lanes holding a slot: their requests are in flight."""
    from evaluation.run._slot_waits import lanes_now

    return lanes_now()[0]


def _waiting_now() -> int:
    """The run's lanes waiting for a slot (another run holds them)."""
    from evaluation.run._slot_waits import lanes_now

    return lanes_now()[1]


def seconds_text(seconds: float) -> str:
    """A phase's time: "0.4 s" under ten seconds, else as durations are printed."""
    return f"{seconds:.1f} s" if seconds < 10 else format_duration(seconds)


NAME_WIDTH = 18
#: Before each line's time: without it the generating line's "1 in flight 1 min 45 s"
#: read as one request's age, not the stage's.
TIME_MARK = "· "
BAR_WIDTH = 24
#: Narrower than this, the bar is left out: its numbers are on the line anyway.
MIN_BAR_WIDTH = 10
#: The widest the generating line's rate, ETA and time get (under ten hours); its count,
#: failures and requests in flight get as wide as the run's total and slots (99 where
#: they are not known). The bar's width and the parts of the line shown are set from
#: these, not from the frame's own numbers, so they keep for the run instead of changing
#: as the numbers change length ("0 failed" came and went between frames at 80 columns).
WIDEST_RATE = len("59.9 gen/min")
WIDEST_ETA = len("ETA 9 min 59 s")
WIDEST_TIME = len(f"{TIME_MARK}9 min 59 s")


class _PhaseBar(BarColumn):
    """The bar, on the generating line only (none where the terminal has no room)."""

    def render(self, task: Task) -> Text:
        shown = task.fields.get("bar") and self.bar_width
        return super().render(task) if shown else Text("")


#: How soon a part of the generating line goes where the terminal is too narrow for the
#: whole of it at its widest (the highest first): once a generation has failed, the rate,
#: then the ETA, and last the failures; before, the failures ("0 failed") go first, so
#: a long run keeps its ETA until something fails (``_layout``). The count and the
#: requests in flight (what docs/throughput.md reads) always stay.
_KEEP, _FAILURES, _ETA, _RATE = range(4)
_ALL = frozenset(range(4))
Part = tuple[str, int]  # its text, and how soon it goes (above)


def _joined(parts: list[Part], room: int | None) -> str:
    """The parts, dropping the first to go until they fit ``room`` characters (only
    where a number outgrew its widest, ``_layout``); what is still too long ends in an
    ellipsis rather than wrapping onto a second line."""
    parts = list(parts)
    while room is not None and len(", ".join(p for p, _ in parts)) > room:
        soonest = max(rank for _, rank in parts)
        if soonest == _KEEP:
            break
        parts = [part for part in parts if part[1] != soonest]
    text = ", ".join(p for p, _ in parts)
    if room is not None and len(text) > room:
        text = text[: max(room - 1, 0)] + "…"
    return text


#: The rate and ETA stand for the run while the last generation stored is younger than
#: this many of its expected intervals (1 / rate), and at least STALE_MIN_S seconds: a
#: model loading held "3.0 gen/s, ETA 13 s" for seconds while nothing finished.
STALE_INTERVALS = 3
STALE_MIN_S = 5.0


class _Detail(ProgressColumn):
    """What the phase is doing; while generating, the requests in flight read now (a
    host answering nothing for a minute shows them, where the count stands still; a
    lane's once it holds a slot) and the lanes waiting for a slot another run holds, and
    once nothing has finished for a while (``STALE_INTERVALS``) no rate or ETA but what
    it waits on. Only the parts ``shown`` (``shown_failing`` once a generation has failed;
    both set for the run, ``_layout``), in at most ``room`` characters where set
    (``_FittedProgress``)."""

    def __init__(
        self,
        in_flight: Callable[[], int],
        clock: Callable[[], float],
        waiting: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__()
        self.in_flight = in_flight
        self.waiting = waiting
        self.clock = clock
        self.room: int | None = None
        self.shown = self.shown_failing = _ALL

    def _shown(self, task: Task) -> frozenset[int]:
        return self.shown_failing if task.fields.get("failing") else self.shown

    def parts(self, task: Task) -> list[Part]:
        parts: list[Part] = task.fields.get("parts") or [(task.fields.get("detail", ""), _KEEP)]
        if task.fields.get("bar") and not task.finished and task.stop_time is None:
            flying = self.in_flight()
            if flying and self._stale(task):
                parts = self._waiting(task, flying)
            elif flying:
                parts = [*parts, (f"{flying} in flight", _KEEP)]
            if waiting := self.waiting():  # what else stands still: not in flight
                parts = [*parts, (f"{waiting} waiting for a slot", _KEEP)]
        return [part for part in parts if part[0] and part[1] in self._shown(task)]

    def render(self, task: Task) -> Text:
        return Text(_joined(self.parts(task), self.room))

    def _waiting(self, task: Task, flying: int) -> list[Part]:
        """What a line whose rate and ETA aged waits on: where all the work left waits on
        models' first answers (``Reading.first_answers_awaited``), that they may be
        loading, named where the room allows ("ETA —" goes first)."""
        waiting = [part for part in task.fields["waiting"] if part[1] in self._shown(task)]
        plain = f"waiting on {flying} in flight"
        models = task.fields.get("awaited") or ()
        if not models:
            return [*waiting, (plain, _KEEP)]
        generic = "model loading?" if len(models) == 1 else "models loading?"
        named = f"{models[0]} loading?" if len(models) == 1 else generic
        hints = (f"{plain} ({named})", f"{flying} in flight ({named})")
        hints += (f"{plain} ({generic})", f"{flying} in flight ({generic})")
        without_eta = [part for part in waiting if part[1] != _ETA]
        for hint in dict.fromkeys(hints):
            for parts in (waiting, without_eta):
                tried = [*parts, (hint, _KEEP)]
                if self.room is None or len(", ".join(p for p, _ in tried)) <= self.room:
                    return tried
        return [*waiting, (plain, _KEEP)]

    def _stale(self, task: Task) -> bool:
        per_s, since = task.fields.get("per_s"), task.fields.get("stored_at")
        if not per_s or since is None or "waiting" not in task.fields:
            return False
        return self.clock() - since > max(STALE_MIN_S, STALE_INTERVALS / per_s)


class _Time(ProgressColumn):
    """The phase's time so far (its own clock: the generating line's starts with
    generation, not with the display), until it is done: the generating line's stops at
    its last generation (with lane workers it counted on for the seconds they took to
    close, until the next phase began)."""

    def render(self, task: Task) -> Text:
        seconds = task.fields.get("seconds")
        if seconds is None:
            seconds = task.elapsed if task.finished_time is None else task.finished_time
        return Text(TIME_MARK + seconds_text(seconds or 0.0))


class RunProgress:
    """The phases of one run as rich progress lines, fed by ``tasks.progress`` listeners
    (``update``) and by the CLI (``phase`` and ``done``)."""

    def __init__(
        self,
        console: Console,
        in_flight: Callable[[], int] = _in_flight_now,
        clock: Callable[[], float] = time.monotonic,
        slots: int = 99,
        waiting: Callable[[], int] = _waiting_now,
    ) -> None:
        """``slots``: the most requests in flight at once (the hosts' slots);
        ``in_flight`` and ``waiting``: the run's lanes holding a slot and waiting for one."""
        self.progress = _FittedProgress(
            TextColumn(f"{{task.description:<{NAME_WIDTH}}}"),
            _PhaseBar(bar_width=BAR_WIDTH),
            _Detail(in_flight, clock, waiting),
            _Time(),
            console=console,
            transient=False,
            refresh_per_second=4,
            get_time=clock,
        )
        self.progress.slots = slots
        self.clock = clock
        self.current: TaskID | None = None
        self.generating: dict[str, TaskID] = {}

    def end_line(self) -> bytes:
        """What finishes the display's last line and shows the cursor again, while the
        display is drawn (rich leaves the cursor hidden at the end of its last line until
        it stops): safe from any thread, it draws nothing."""
        return b"\n\x1b[?25h" if self.progress.live.is_started else b""

    def done(self, name: str, seconds: float, detail: str = "") -> None:
        """A phase that ended before the display started (the checks before Prefect)."""
        self.progress.add_task(
            name, total=1, completed=1, bar=False, detail=detail, seconds=seconds
        )

    def phase(
        self, name: str, detail: str = "", *, total: int | None = None, since: float | None = None
    ) -> TaskID:
        """End the phase under way and start ``name``: its clock starts now, or at
        ``since`` (the display's clock) for a phase under way before the display."""
        self.finish()
        bar = name == GENERATING
        self.current = self.progress.add_task(
            name, total=total or 1, completed=0, bar=bar, detail=detail
        )
        if since is not None:
            with self.progress._lock:  # rich keeps no public way to start a task earlier
                self.progress._tasks[self.current].start_time = since
        return self.current

    def finish(self) -> None:
        """End the phase under way (its time stops)."""
        if self.current is not None:
            task = self.progress.tasks[self.current]
            if not task.fields.get("bar"):  # a phase line is done once it ends
                self.progress.update(self.current, completed=task.total)
            self.progress.stop_task(self.current)
            self.current = None

    def update(self, reading: Reading) -> None:
        """A listener for ``tasks.progress.LISTENERS``."""
        label = reading.label
        if reading.step is not None:
            step = _PHASE_NAMES.get(reading.step, reading.step)
            if step == GENERATING:
                detail = f"0/{reading.total}" if reading.total else ""
                self.generating[label] = self.phase(GENERATING, detail, total=reading.total)
            else:
                self.phase(step)
            return
        if label not in self.generating:  # a run that did not announce its generation
            self.generating[label] = self.phase(GENERATING, total=reading.total)
        if reading.note is not None:  # before the first request: what it waits on
            count = f"{reading.done}/{reading.total}"
            detail = f"{count}, {reading.note}" if reading.note else count
            self.progress.update(self.generating[label], detail=detail, parts=None)
            return
        count: Part = (f"{reading.done}/{reading.total}", _KEEP)
        failed: Part = (f"{reading.failed} failed", _FAILURES)
        parts = [count]
        if reading.per_s is not None:
            parts.append((f"{format_rate(reading.per_s).replace('/', ' gen/')}", _RATE))
        if reading.done < reading.total:
            eta = reading.eta_s
            parts.append(("ETA -" if eta is None else f"ETA {format_duration(eta)}", _ETA))
        parts.append(failed)
        self.progress.update(
            self.generating[label],
            completed=reading.done,
            total=reading.total or 1,
            parts=parts,
            waiting=[count, ("ETA —", _ETA), failed],
            per_s=reading.per_s,
            stored_at=self.clock(),
            awaited=reading.first_answers_awaited,
            failing=reading.failed > 0,
        )


class _FittedProgress(Progress):
    """Progress whose lines fit the terminal's width: at 80 columns the generating line
    wrapped, and "N in flight" went to a second line. What the generating line shows is
    set for the run from its widest (``_layout``): the bar's width (it jumped between
    frames as the counts, rate and ETA changed length) and its parts ("0 failed" came and
    went); without a bar, no column is kept for it."""

    slots = 99  # the most requests in flight at once

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        tasks = [task for task in tasks if task.visible]
        if not hasattr(self, "live"):  # rich's Live asks for a first table while it is made
            return super().make_tasks_table(tasks)
        _, bar, detail, time_column = self.columns
        assert isinstance(bar, _PhaseBar) and isinstance(detail, _Detail)
        assert isinstance(time_column, _Time)
        names = max([NAME_WIDTH, *(len(str(task.description)) for task in tasks)])
        times = max((time_column.render(task).cell_len for task in tasks), default=0)
        room = self.console.width - names - 2  # 2: the gaps beside the line's parts
        totals = [int(task.total or 0) for task in tasks if task.fields.get("bar")]
        bar.bar_width, detail.shown, detail.shown_failing = _layout(
            room - max(times, WIDEST_TIME), max(totals, default=0), self.slots
        )
        detail.room = room - times - (bar.bar_width + 1 if bar.bar_width else 0)
        columns = [column for column in self.columns if column is not bar or bar.bar_width]
        table_columns = [c.get_table_column().copy() for c in columns]
        # The detail's column is as wide as its room, so the time after it stays put
        # (it moved 5-6 columns as the ETA went from "57 s" to "1 min 13 s" and back:
        # the newcomers' F6); only the time's own length moves it, once a while.
        table_columns[columns.index(detail)].min_width = detail.room
        table = Table.grid(*table_columns, padding=(0, 1))
        for task in tasks:
            table.add_row(*(column(task) for column in columns))
        return table


def _layout(room: int, total: int, slots: int) -> tuple[int, frozenset[int], frozenset[int]]:
    """The bar's width and the generating line's parts shown before the run's first failure
    and from it on, for ``total`` generations on ``slots`` slots in ``room`` columns: the
    bar only where the whole line at its widest leaves it ``MIN_BAR_WIDTH`` columns, else
    the parts that go soonest go until the line at its widest fits. Once a generation has
    failed, the failures outlast the rate and the ETA; before, "0 failed" is shown only
    where it costs nothing else (the parts then change once, at the first failure: at 80
    columns 100,000 generations on 99 slots keep their ETA until then, where reserving
    "100000 failed" cost it for the whole run)."""
    widest = {
        _KEEP: len(f"{total}/{total}, {slots} in flight"),
        _FAILURES: len(f", {total} failed"),
        _ETA: len(", ") + WIDEST_ETA,
        _RATE: len(", ") + WIDEST_RATE,
    }
    left = room - sum(widest.values()) - 1  # 1: the gap after the bar
    if left >= MIN_BAR_WIDTH:
        return min(BAR_WIDTH, left), _ALL, _ALL
    failing = _fitting(widest, room, (_RATE, _ETA, _FAILURES))
    clean = _fitting(widest, room, (_FAILURES, _RATE, _ETA))
    return 0, failing if clean - {_FAILURES} <= failing else clean, failing


def _fitting(widest: dict[int, int], room: int, order: tuple[int, ...]) -> frozenset[int]:
    """The parts left of ``widest`` once those in ``order`` go, one by one, until the
    rest fit ``room`` columns."""
    shown = set(widest)
    for rank in order:
        if sum(widest[r] for r in shown) <= room:
            break
        shown.discard(rank)
    return frozenset(shown)


@contextmanager
def run_progress(
    enabled: bool, console: Console | None = None, slots: int = 99
) -> Iterator[RunProgress | None]:
    """Show the display while the block runs (``enabled`` and a terminal), else nothing;
    it listens to the run's progress in this process (on hosts of ``slots`` in all)."""
    console = console or _log_console() or Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield None
        return
    from flows.run_control import LINE_ENDERS
    from tasks.progress import LISTENERS

    display = RunProgress(console, slots=slots)
    console.push_theme(_BAR_THEME)  # Prefect's console has only its own log styles
    LISTENERS.append(display.update)
    LINE_ENDERS.append(display.end_line)
    try:
        with display.progress:
            yield display
            display.finish()
    finally:
        LINE_ENDERS.remove(display.end_line)
        LISTENERS.remove(display.update)
        console.pop_theme()


def _log_console() -> Console | None:
    """The console of Prefect's log handler: a display drawn on it keeps the log lines
    above itself instead of breaking into them."""
    for handler in logging.getLogger().handlers:
        console = getattr(handler, "console", None)
        if type(handler).__name__ == "PrefectConsoleHandler" and isinstance(console, Console):
            return console
    return None
