"""The terminal display of `run`: a line per phase with its time; the generating line,
fed by the generation progress in this process, shows done/total, rate, requests in
flight, ETA and failures so far; off when stderr is not a terminal."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import threading
import uuid

import pytest
from rich.console import Console
from rich.theme import Theme

from flows.cli.progress import RunProgress, run_progress
from tasks import progress


def _terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=140)


def _reading(done: int, failed: int, per_s: float | None = None, eta_s: float | None = None):
    return progress.Reading("demo", done, 10, failed, per_s, eta_s)


def _drawn(bar: RunProgress) -> str:
    bar.progress.console.print(bar.progress.get_renderable())
    return bar.progress.console.file.getvalue()


def test_the_bar_shows_counts_and_failures_so_far():
    bar = RunProgress(_terminal())
    bar.update(_reading(3, 1))
    bar.update(_reading(7, 2, per_s=2.0, eta_s=90))
    text = _drawn(bar)
    assert "generating" in text and "7/10" in text and "2 failed" in text
    assert "2.0 gen/s" in text and "ETA 1 min 30 s" in text


def test_the_bar_and_the_log_print_the_same_rate(monkeypatch):
    """One definition of the rate: the bar shows what the 10% log lines print (they
    differed, 264 against 206 gen/s, when the bar measured its own)."""
    clock = [100.0]
    monkeypatch.setattr(progress, "_clock", lambda: clock[0])
    lines = []
    logger = logging.getLogger("test-rate")
    monkeypatch.setattr(logger, "info", lambda fmt, *a: lines.append(fmt % a))
    monkeypatch.setattr(progress, "get_run_logger", lambda: logger)
    bar = RunProgress(_terminal())
    monkeypatch.setattr(progress, "LISTENERS", [bar.update])
    tracker = progress.ProgressArtifact(None, "demo", total=100)
    for step, seconds in ((30, 0.1), (40, 0.3), (30, 0.2)):  # uneven: 100 in 0.6 s
        clock[0] += seconds
        asyncio.run(tracker.advance(step))
    assert lines[-1] == "demo: 100/100 generations (100%), 166.7/s"
    assert "166.7 gen/s" in _drawn(bar)


def _tracked(monkeypatch, total: int, latency_s: float):
    """A tracker of one config's ``total`` generations on a clock the test moves, what
    its listeners were told, and a stored record of ``latency_s`` on a slot."""
    from types import SimpleNamespace

    from evaluation.run import WorkMix

    clock = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: clock[0])
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    seen: list[progress.Reading] = []
    monkeypatch.setattr(progress, "LISTENERS", [seen.append])
    item = SimpleNamespace(config=SimpleNamespace(hash="a"))
    result = SimpleNamespace(latency_s=latency_s)
    record = SimpleNamespace(item=item, result=result, ok=True, host="h", answered_at=None)
    mix = WorkMix(remaining={"a": total}, model_of={"a": "m"})
    return clock, seen, record, progress.ProgressArtifact(None, "demo", total=total, mix=mix)


def test_the_rate_counts_from_when_the_hosts_get_work_not_from_the_workers_start_up(
    monkeypatch,
):
    """A newcomer's `run --workers 2`: the tracker was made before the lane workers
    started (80 s under load), and the first stored generations read as ~0.1/s and an
    ETA of hours."""
    clock, seen, record, tracker = _tracked(monkeypatch, 100, 0.5)
    clock[0] = 80.0  # the workers' start-up
    tracker.work_starts()
    for _ in range(4):
        clock[0] += 0.5
        asyncio.run(tracker.stored([record] * 4))  # 4 slots, 0.5 s each
    assert seen[-1].done == 16 and seen[-1].per_s == pytest.approx(8.0)
    assert seen[-1].eta_s == pytest.approx(84 / 8.0)  # 84 left at 4 slots' pace


def test_the_rate_and_eta_count_from_the_first_batch_stored_not_the_pipelines_filling(
    monkeypatch, caplog
):
    """Newcomers' nctput-4 (`--workers 4`, 64 slots): the first answers came 0.5-1.0 s
    after the workers were up but were stored 4.7 s after, through the workers and the
    writer process; counted from the workers' readiness the first line read `74/5760
    (1%), 15.8/s, ETA 6 min` for a phase of 18 s. The first batch says no rate or ETA;
    the next ones count from it."""
    clock, seen, record, tracker = _tracked(monkeypatch, 5760, 0.2)
    tracker.work_starts()
    clock[0] = 4.7  # the first batch, after the pipeline filled
    with caplog.at_level(logging.INFO, logger="test"):
        asyncio.run(tracker.stored([record] * 74))
    assert (seen[-1].per_s, seen[-1].eta_s) == (None, None)
    assert caplog.messages == ["demo: 74/5760 generations (1%), ETA unknown yet"]
    clock[0] = 6.9  # 1,108 more at 64 slots of 0.2 s: 320/s
    asyncio.run(tracker.stored([record] * 1108))
    assert seen[-1].per_s == pytest.approx(1108 / 2.2)
    assert seen[-1].eta_s == pytest.approx((5760 - 1182) * 0.2 / (1108 * 0.2 / 2.2))


def test_after_generation_the_bar_says_which_step_is_under_way(monkeypatch):
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    bar = RunProgress(_terminal())
    monkeypatch.setattr(progress, "LISTENERS", [bar.update])
    bar.update(progress.Reading("demo", 10, 10, 0, 5.0, 0.0))
    progress.announce_step("demo", "comparing configs")
    text = _drawn(bar)
    assert "10/10" in text and "\ncomparing " in text


def test_the_generation_progress_feeds_every_listener_with_failures(monkeypatch):
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    seen = []
    monkeypatch.setattr(progress, "LISTENERS", [seen.append])
    tracker = progress.ProgressArtifact(None, "demo", total=5)
    asyncio.run(tracker.advance(2, 1))
    asyncio.run(tracker.advance(3))
    assert [(r.label, r.done, r.total, r.failed) for r in seen] == [
        ("demo", 2, 5, 1),
        ("demo", 5, 5, 1),
    ]


def test_items_no_live_host_serves_count_as_failed_when_their_host_goes_down(monkeypatch):
    """A newcomer's server died mid-run: the line left on screen said 79/100 and nothing
    failed, the run ended with 21 failed (stored as failed after generation, past the
    line). The dispatch's lost items count now, on the line and in the monitor's row."""
    from evaluation.run._dispatch import Unservable

    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    bar = RunProgress(_terminal())
    monkeypatch.setattr(progress, "LISTENERS", [bar.update])

    class Live:  # the monitor's row (evaluation.monitor.LiveRun)
        def __init__(self) -> None:
            self.errors: list[str | None] = []

        def answered(self, hosts):
            pass

        def stored(self, errors, per_s=None, eta_s=None):
            self.errors += errors

    clock = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: clock[0])
    live = Live()
    tracker = progress.ProgressArtifact(None, "demo", total=100, live=live)  # type: ignore[arg-type]
    clock[0] = 7.9
    asyncio.run(tracker.advance(79))  # 10 a second
    clock[0] = 8.0
    reason = "every host serving 'm' is down (sim unreachable: ConnectError)"
    asyncio.run(tracker.never_answered([Unservable(None, reason, "sim")] * 21))  # type: ignore[arg-type]
    line = next(line for line in _drawn(bar).splitlines() if line.startswith("generating"))
    assert "100/100" in line and "21 failed" in line, line
    assert "9.9 gen/s" in line  # 79 in 8 s: what no host ran is not in the rate
    assert live.errors == [f"BackendUnavailable: {reason}"] * 21


def test_the_bar_listens_only_while_a_run_is_drawn_on_a_terminal():
    with run_progress(enabled=True, console=_terminal()) as bar:
        assert bar is not None and [bar.update] == progress.LISTENERS
    assert progress.LISTENERS == []
    not_a_terminal = Console(file=io.StringIO(), force_terminal=False)
    with run_progress(enabled=True, console=not_a_terminal) as bar:
        assert bar is None and progress.LISTENERS == []
    with run_progress(enabled=False, console=_terminal()) as bar:  # -q
        assert bar is None and progress.LISTENERS == []


def test_the_bar_draws_on_a_console_without_rich_default_styles():
    """Prefect's log console has only its own styles; the bar brings its own."""
    bare = Console(
        file=io.StringIO(), force_terminal=True, width=140, theme=Theme({}, inherit=False)
    )
    with run_progress(enabled=True, console=bare) as bar:
        bar.update(progress.Reading("demo", 1, 2, 0, None, None))
        bar.progress.refresh()
    assert "1/2" in bare.file.getvalue()


@pytest.mark.usefixtures("prefect_harness")
def test_the_progress_artifact_shows_rate_and_eta_in_the_ui(monkeypatch):
    """The artifact's description (what the UI shows of a run on a worker, with no
    terminal bar) carries done/total, rate and ETA; the log lines every 10% too."""
    from prefect import flow
    from prefect.client.orchestration import get_client

    clock = [1000.0]
    monkeypatch.setattr(progress, "_clock", lambda: clock[0])
    lines = []
    logger = logging.getLogger("test-progress")
    monkeypatch.setattr(logger, "info", lambda fmt, *a: lines.append(fmt % a))
    monkeypatch.setattr(progress, "get_run_logger", lambda: logger)

    @flow
    async def generating() -> None:
        tracker = await progress.ProgressArtifact.create("progress-eta-test", "demo", total=100)
        for _ in range(4):  # 5 generations every 2 s: 2.5/s
            clock[0] += 2.0
            await tracker.advance(5, 1)
        await tracker.flush()

    async def main() -> str:
        await generating()
        async with get_client() as client:
            artifacts = await client.read_latest_artifacts()
        return next(a for a in artifacts if a.key == "progress-eta-test").description

    description = asyncio.run(main())
    assert description == (
        "Generation progress: demo: 20/100 generations (20%), 2.5/s, ETA 32 s, 4 failed"
    )
    assert lines[-1] == "demo: 20/100 generations (20%), 2.5/s, ETA 32 s, 4 failed"


def test_the_progress_eta_comes_from_the_work_mix_of_what_was_stored(monkeypatch):
    from types import SimpleNamespace

    from evaluation.run import WorkMix

    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    mix = WorkMix({"a": 4, "b": 4}, {"a": "small", "b": "big"}, prior_s={"b": 30.0})
    tracker = progress.ProgressArtifact(None, "demo", total=8, mix=mix)

    def record(config: str, latency: float):
        item = SimpleNamespace(config=SimpleNamespace(hash=config))
        result = SimpleNamespace(latency_s=latency)
        return SimpleNamespace(item=item, result=result, ok=True, host="h", answered_at=None)

    now[0] = 10.0
    asyncio.run(tracker.stored([record("a", 10.0) for _ in range(4)]))  # 4 slots, 10 s each
    # b's 4 generations at 30 s each on 4 slots: 30 s (the count-based rate said 10 s)
    assert "4/8 generations (50%), 24.0/min, ETA 30 s" in tracker.description()
    console = _terminal()
    bar = RunProgress(console)
    seen = []
    monkeypatch.setattr(progress, "LISTENERS", [seen.append, bar.update])
    asyncio.run(tracker.advance(0))
    assert seen[-1].eta_s == 30.0  # the bar is given the work mix's ETA, not the count's
    console.print(bar.progress.get_renderable())
    assert "ETA 30 s" in console.file.getvalue()


def test_the_work_mix_is_told_when_each_answer_came_not_when_it_was_stored(monkeypatch):
    """The newcomer's F4: a busy writer stored its first batch 11.5 s into the run, the
    answers in it came from 0.1 s on (1024 lanes on a host with a queue). An answer sent
    at 0 s that came at 5 s was sent after the first answer less a second, not before:
    its time is its config's, not a cold request's."""
    from types import SimpleNamespace

    from evaluation.run import WorkMix

    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    monkeypatch.setattr(progress, "_clock", lambda: 11.5)
    mix = WorkMix({"a": 10}, {"a": "m"})
    tracker = progress.ProgressArtifact(None, "demo", total=10, mix=mix)
    item = SimpleNamespace(config=SimpleNamespace(hash="a"))
    records = [
        SimpleNamespace(
            item=item, result=SimpleNamespace(latency_s=s), ok=True, host="h", answered_at=s
        )
        for s in (0.1, 5.0)
    ]
    asyncio.run(tracker.stored(records))
    assert mix.seconds_per_generation("a") == pytest.approx((0.1 + 5.0) / 2)  # was 0.1


def _bar_colour(done: int, color_system: str) -> str:
    """The SGR code the bar of ``done``/2 is drawn in."""
    console = Console(
        file=io.StringIO(),
        force_terminal=True,
        width=140,
        theme=Theme({}, inherit=False),
        color_system=color_system,
    )
    with run_progress(enabled=True, console=console) as bar:
        bar.update(progress.Reading("demo", done, 2, 0, None, None))
    last = console.file.getvalue().rsplit("generating", 1)[1].lstrip()
    return last[: last.index("━")]


@pytest.mark.parametrize("color_system", ["standard", "256", "truecolor"])
def test_a_finished_bar_is_not_drawn_in_the_empty_bars_grey(color_system):
    """On a 16-colour terminal rich's RGB green of a finished bar became the same grey
    (SGR 90) as the empty bar: a complete run looked like one that had not started."""
    empty, finished = _bar_colour(0, color_system), _bar_colour(2, color_system)
    assert empty and finished and empty != finished


def _phases_text(width: int = 120) -> tuple[RunProgress, Console, list[float]]:
    now = [100.0]
    console = Console(file=io.StringIO(), force_terminal=True, width=width)
    display = RunProgress(console, in_flight=lambda: 4, clock=lambda: now[0])
    return display, console, now


def test_each_phase_has_its_line_and_its_time_and_generation_counts_from_its_own_start(
    monkeypatch,
):
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    display, _, now = _phases_text()
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    display.done("preparing", 0.42, "12 configs, suite qa-short")
    display.done("checking hosts", 0.05, "sim: reachable, models there")
    display.phase("starting Prefect", "a local server", since=97.0)  # began before the display
    now[0] = 106.0
    progress.announce_step("demo", "generating", 10)
    now[0] = 181.0  # 75 s after generation began, 84 s after the display did
    display.update(_reading(5, 0, per_s=0.5, eta_s=75))
    lines = [" ".join(line.split()) for line in _drawn(display).splitlines()]
    assert [line.split()[0] for line in lines] == [
        "preparing",
        "checking",
        "starting",
        "generating",
    ]
    assert lines[0].endswith("12 configs, suite qa-short · 0.4 s")
    assert lines[2].endswith("a local server · 9.0 s")  # from 97 s to 106 s
    assert "5/10, 30.0 gen/min, ETA 1 min 15 s, 0 failed, 4 in flight" in lines[3]
    assert lines[3].endswith("4 in flight · 1 min 15 s")  # elapsed since generation began
    now[0] = 190.0
    progress.announce_step("demo", "writing report")
    text = _drawn(display)
    last = text.splitlines()[-1]
    assert last.startswith("writing the report") and "in flight" not in text.split("\n")[-2]
    shown = re.sub(r"\x1b\[[0-9;]*m", "", text)  # as the terminal shows it
    assert max(len(line) for line in shown.splitlines()) <= 120


def test_requests_in_flight_show_while_nothing_is_stored_yet():
    """53 s of silence while the first requests were on the wire: now they are counted."""
    display, _, now = _phases_text()
    display.update(progress.Reading("demo", 0, 36, 0, None, None, "generating"))
    now[0] += 53
    line = _drawn(display).splitlines()[-1]
    assert "0/36, 4 in flight" in line and line.rstrip().endswith("· 53 s")


def test_while_the_display_shows_the_run_its_info_lines_stay_off_the_terminal():
    from flows.cli.logs import _Verbosity

    keep = _Verbosity(0)
    ours = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, "m", None, None)
    warning = logging.LogRecord("prefect.task_runs", logging.WARNING, __file__, 1, "m", None, None)
    assert keep.filter(ours)
    keep.displayed = True
    assert not keep.filter(ours) and keep.filter(warning)
    verbose = _Verbosity(1)
    verbose.displayed = True
    assert verbose.filter(ours)  # -v: Prefect's lines back, beside the display


@pytest.mark.parametrize(("given", "kept"), [(None, "1"), ("0", "0")])
def test_prefects_first_run_notice_and_usage_event_are_off_unless_the_user_says(
    monkeypatch, given, kept
):
    """A newcomer's first run printed three lines of Prefect's telemetry notice."""
    import os
    import sys

    from flows.cli import console_main

    if given is None:
        monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    else:
        monkeypatch.setenv("DO_NOT_TRACK", given)
    monkeypatch.setattr(sys, "argv", ["evalflow", "--version"])
    with pytest.raises(SystemExit):
        console_main()
    assert os.environ["DO_NOT_TRACK"] == kept


def test_an_interrupt_starts_its_message_on_a_line_of_its_own(monkeypatch):
    """Ctrl-C wrote `interrupted: waiting...` on the end of the display's last line (rich
    leaves the cursor there, hidden): the interrupt ends that line first."""
    from flows import run_control

    for name in ("stop_sending", "wait_for_cases_in_flight", "_give_back_slots", "flush_all"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "_mark_interrupted", lambda *a: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 1)

    def exit_(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(run_control.os, "_exit", exit_)
    read_end, write_end = os.pipe()
    with run_progress(enabled=True, console=_terminal()) as bar:
        bar.update(_reading(3, 0))
        with pytest.raises(SystemExit):
            run_control._stop(
                "db",
                "demo",
                None,
                "evalflow run x",
                None,
                write_end,
                5.0,
                threading.Event(),
                signal.SIGINT,
            )
    assert run_control.LINE_ENDERS == []
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        written = pipe.read()
    assert written.startswith(b"\n\x1b[?25h" + b"interrupted: waiting up to 5 s")
    assert written.count(b"\n") == 3  # the display's line ended, then the two messages


def test_the_last_count_is_written_to_the_artifact_once(monkeypatch):
    """The last batch stored sends the final count; the phase's end waited for a second,
    identical write to the API. One the last update did not carry is still written."""
    sent = []

    async def update(artifact_id, progress, description):
        sent.append((progress, description))

    monkeypatch.setattr(progress, "aupdate_progress_artifact", update)
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test-progress"))

    async def run(*, settled: bool) -> None:
        tracker = progress.ProgressArtifact(uuid.uuid4(), "demo", total=10)
        await tracker.advance(9)
        if settled:
            await asyncio.sleep(0)  # that update written: the last batch sends its own
        await tracker.advance(1)
        await tracker.flush()

    asyncio.run(run(settled=True))
    assert [p for p, _ in sent] == [90.0, 100.0]
    sent.clear()
    asyncio.run(run(settled=False))  # the last batch found an update under way
    assert [p for p, _ in sent] == [90.0, 100.0]
    assert sent[-1][1].startswith("Generation progress: demo: 10/10 generations (100%)")


def test_the_rate_and_eta_age_while_nothing_finishes():
    """A model loading held "36/72, 3.0 gen/s, ETA 13 s" for 9 s while nothing finished
    (#47): after a few expected intervals the display says what it waits on instead."""
    now = [100.0]
    bar = RunProgress(_terminal(), in_flight=lambda: 2, clock=lambda: now[0])
    bar.update(progress.Reading("demo", 36, 72, 0, 3.0, 13.0))

    def line() -> str:
        return bar.progress.columns[2].render(bar.progress.tasks[-1]).plain

    now[0] += 4.9  # within 5 s: the rate stands
    assert line() == "36/72, 3.0 gen/s, ETA 13 s, 0 failed, 2 in flight"
    now[0] += 0.2
    assert line() == "36/72, ETA —, 0 failed, waiting on 2 in flight"
    bar.update(progress.Reading("demo", 37, 72, 0, 0.5, 70.0))  # one more stored
    now[0] += 5.9  # at 0.5 gen/s: 3 intervals are 6 s
    assert "30.0 gen/min" in line() and "ETA 1 min 10 s" in line()
    now[0] += 0.2
    assert "waiting on 2 in flight" in line()


def test_the_generating_line_says_the_lane_workers_start_until_the_hosts_get_work(monkeypatch):
    """A newcomer's `run --workers 2` at a terminal: `0/864` stood still for 4.5 s without
    a word (the "starting 2 lane workers" log line is kept off a terminal's display)."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    display = RunProgress(_terminal(), in_flight=lambda: 0)
    monkeypatch.setattr(progress, "LISTENERS", [display.update])

    def line() -> str:
        return display.progress.columns[2].render(display.progress.tasks[-1]).plain

    progress.announce_step("demo", "generating", 864)
    tracker = progress.ProgressArtifact(None, "demo", total=864)
    tracker.waiting("starting 2 lane workers…")
    assert line() == "0/864, starting 2 lane workers…"
    tracker.work_starts()  # they are up: the hosts get their first requests
    assert line() == "0/864"
    asyncio.run(tracker.advance(3))
    assert line().startswith("3/864, ")


def test_the_generating_lines_time_stops_at_its_last_generation(monkeypatch):
    """With lane workers the line counted on for ~2 s after 864/864 (their close), until
    scoring began."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    display, _, now = _phases_text()
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    progress.announce_step("demo", "generating", 10)
    now[0] += 5.0
    display.update(_reading(10, 0, per_s=2.0, eta_s=0))
    now[0] += 2.0  # the workers close; nothing more to generate

    def generating() -> str:
        line = [x for x in _drawn(display).splitlines() if x.startswith("generating")][-1]
        return " ".join(line.split())

    assert generating().endswith("0 failed · 5.0 s")
    progress.announce_step("demo", "scoring")
    assert generating().endswith("0 failed · 5.0 s")


@pytest.mark.parametrize(
    ("width", "failed", "shown", "gone"),
    [
        (80, 0, "38/40, ETA 1 min 33 s, 0 failed, 1 in flight", ("gen/min", "━")),
        (80, 2, "38/40, ETA 1 min 33 s, 2 failed, 1 in flight", ("gen/min", "━")),
        (100, 0, "38/40, 26.8 gen/min, ETA 1 min 33 s, 0 failed, 1 in flight", ("━",)),
        (120, 0, "38/40, 26.8 gen/min, ETA 1 min 33 s, 0 failed, 1 in flight", ()),
        (60, 0, "38/40, 1 in flight", ("gen/min", "ETA", "failed")),
    ],
)
def test_the_generating_line_fits_the_terminal_keeping_what_is_in_flight(
    monkeypatch, width, failed, shown, gone
):
    """The newcomer's F10: at 80 columns the line wrapped and "1 in flight" went to a
    second line. The bar is narrower or none (one width for the run: the next test),
    the rate goes, then the ETA and the failures; the count and the requests in flight
    stay."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    display, _, now = _phases_text(width)
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    display.done("preparing", 0.42, "4 configs, suite capitals")
    display.done("checking hosts", 1.8, "local: reachable, models there")
    display.phase("starting Prefect", "a local server")
    now[0] += 11
    monkeypatch.setattr(display.progress.columns[2], "in_flight", lambda: 1)
    progress.announce_step("demo", "generating", 40)
    now[0] += 67
    display.update(progress.Reading("demo", 38, 40, failed, 26.8 / 60, 93.0))
    lines = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()
    assert [line.split()[0] for line in lines] == [
        "preparing",
        "checking",
        "starting",
        "generating",
    ]
    assert max(len(line) for line in lines) <= width
    assert shown in lines[-1] and lines[-1].endswith(" · 1 min 7 s")
    assert not any(part in lines[-1] for part in gone)


@pytest.mark.parametrize(("width", "bar_width"), [(80, 0), (100, 0), (110, 14), (120, 24)])
def test_the_bar_keeps_one_width_for_the_run(monkeypatch, width, bar_width):
    """The bar jumped between frames as the count, rate and ETA changed length (its
    width was what the frame's numbers left): it is set from their widest instead."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    display, console, now = _phases_text(width)
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    progress.announce_step("demo", "generating", 432)
    widths = []
    for done, failed, per_s, eta_s in [
        (0, 0, None, None),
        (9, 0, 9.9, 43.0),
        (10, 0, 10.0, 42.0),
        (150, 3, 26.8 / 60, 93.0),
        (431, 12, 0.5, 2.0),
        (432, 12, 0.5, 0.0),
    ]:
        now[0] += 61
        display.update(progress.Reading("demo", done, 432, failed, per_s, eta_s))
        console.file.truncate(0)
        console.file.seek(0)
        line = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()[-1]
        assert len(line) <= width and f"{done}/432" in line
        widths.append(sum(line.count(c) for c in "━╸╺"))
    assert widths == [bar_width] * len(widths)


def test_the_stages_time_is_set_apart_from_the_requests_in_flight(monkeypatch):
    """The newcomer's F5: at 80 columns `29/40, 10.4 gen/min, ETA 1 min 7 s, 1 in flight
    1 min 45 s` read as one request in flight for 1 min 45 s; it is the stage's time."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    display, _, now = _phases_text(80)
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    monkeypatch.setattr(display.progress.columns[2], "in_flight", lambda: 1)
    display.done("preparing", 0.42, "4 configs, suite qa-short")
    progress.announce_step("demo", "generating", 40)
    now[0] += 105
    display.update(progress.Reading("demo", 29, 40, 0, 10.4 / 60, 67.0))
    lines = [line.rstrip() for line in re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()]
    assert lines[0].startswith("preparing") and lines[0].endswith("· 0.4 s")
    assert lines[-1].startswith("generating")
    assert re.search(r"1 in flight +· 1 min 45 s$", lines[-1]), lines[-1]
    assert max(len(line) for line in lines) <= 80


def test_the_generating_line_keeps_its_parts_for_the_run(monkeypatch):
    """The newcomer's F6: at 80 columns `0 failed` came and went as the rate and ETA
    changed length (`10/40, 31.6 gen/min, ETA 57 s, 0 failed, 1 in flight`, then `11/40,
    29.4 gen/min, ETA 1 min 13 s, 1 in flight`). The parts are set from the line at its
    widest: at 80 columns the rate goes for the run, the failures stay."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    now = [100.0]
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    display = RunProgress(console, in_flight=lambda: 1, clock=lambda: now[0])
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    progress.announce_step("demo", "generating", 40)
    details = []
    for done, failed, per_min, eta_s, elapsed in [
        (10, 0, 31.6, 57.0, 20),
        (11, 0, 29.4, 73.0, 25),
        (29, 0, 10.4, 67.0, 105),
        (30, 3, 9.9, 599.0, 599),
    ]:
        now[0] = 100.0 + elapsed
        display.update(progress.Reading("demo", done, 40, failed, per_min / 60, eta_s))
        console.file.truncate(0)
        console.file.seek(0)
        line = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()[-1]
        assert len(line.rstrip()) <= 80
        details.append(line[len("generating") :].split(" · ")[0].strip())
    assert details == [
        "10/40, ETA 57 s, 0 failed, 1 in flight",
        "11/40, ETA 1 min 13 s, 0 failed, 1 in flight",
        "29/40, ETA 1 min 7 s, 0 failed, 1 in flight",
        "30/40, ETA 9 min 59 s, 3 failed, 1 in flight",
    ]


@pytest.mark.parametrize("width", [80, 120])
def test_the_generating_lines_time_keeps_its_column_as_the_eta_changes_length(monkeypatch, width):
    """The newcomers' F6: the time moved 5-6 columns between frames as the detail before
    it changed length ("ETA 57 s", then "ETA 1 min 13 s", then "ETA 9 s")."""
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    now = [100.0]
    console = Console(file=io.StringIO(), force_terminal=True, width=width)
    display = RunProgress(console, in_flight=lambda: 1, clock=lambda: now[0], slots=4)
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    progress.announce_step("demo", "generating", 40)
    columns = []
    for done, per_min, eta_s, elapsed in [
        (10, 31.6, 57.0, 20),
        (11, 29.4, 73.0, 25),
        (39, 9.9, 9.0, 30),
    ]:
        now[0] = 100.0 + elapsed
        display.update(progress.Reading("demo", done, 40, 0, per_min / 60, eta_s))
        console.file.truncate(0)
        console.file.seek(0)
        line = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()[-1]
        assert line.rstrip().endswith(f"· {elapsed} s") and len(line.rstrip()) <= width, line
        columns.append(line.index("· "))
    assert len(set(columns)) == 1, columns


@pytest.mark.parametrize(
    ("slots", "shown"),
    [(4, "190/432, ETA 16 s, 0 failed, 4 in flight"), (99, "190/432, ETA 16 s, 4 in flight")],
)
def test_the_hosts_slots_bound_the_requests_in_flight_the_line_makes_room_for(slots, shown):
    """With the run's slots known (4), 80 columns keep the ETA of a 432-generation run and
    "0 failed"; with room kept for 99 in flight, "0 failed" goes until a failure."""
    now = [100.0]
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    display = RunProgress(console, in_flight=lambda: 4, clock=lambda: now[0], slots=slots)
    display.update(progress.Reading("demo", 190, 432, 0, 18.5, 16.0))
    line = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()[-1]
    assert line[len("generating") :].split(" · ")[0].strip() == shown


@pytest.mark.parametrize(
    ("width", "waiting"),
    [
        (80, "2/4, waiting on 1 in flight (gemma3-270m loading?)"),
        (120, "2/4, ETA —, 0 failed, waiting on 1 in flight (gemma3-270m loading?)"),
    ],
)
def test_a_line_waiting_on_a_models_first_answer_says_it_may_be_loading(
    monkeypatch, width, waiting
):
    """The newcomer's F7: after the switch to gemma the line said `ETA —, 0 failed,
    waiting on 1 in flight` for ~10 s, not that a model was loading. Said only where all
    the work left waits on the first answer of models that have not answered yet."""
    from types import SimpleNamespace

    from evaluation.run import WorkMix

    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    console = Console(file=io.StringIO(), force_terminal=True, width=width)
    display = RunProgress(console, in_flight=lambda: 1, clock=lambda: now[0])
    monkeypatch.setattr(progress, "LISTENERS", [display.update])
    mix = WorkMix({"s": 2, "g": 2}, {"s": "smollm2-135m-instruct", "g": "gemma3-270m"})
    tracker = progress.ProgressArtifact(None, "demo", total=4, mix=mix)

    def store(at: float, config: str, latency: float, quiet: float = 8.0) -> str:
        now[0] = at
        item = SimpleNamespace(config=SimpleNamespace(hash=config))
        result = SimpleNamespace(latency_s=latency)
        record = SimpleNamespace(item=item, result=result, ok=True, host="h", answered_at=None)
        asyncio.run(tracker.stored([record]))
        return line(at + quiet)  # nothing stored since: over 3 intervals (7.5 s at 0.4/s)

    def line(at: float) -> str:
        now[0] = at
        console.file.truncate(0)
        console.file.seek(0)
        drawn = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()[-1]
        assert len(drawn.rstrip()) <= width
        return drawn[len("generating") :].split(" · ")[0].strip(" ━╸╺")

    quiet = "ETA —, waiting" if width == 80 else "ETA —, 0 failed, waiting"
    assert store(2.5, "s", 2.5) == f"1/4, {quiet} on 1 in flight"  # s left
    assert store(5.0, "s", 2.5) == waiting  # what is left is gemma's: its first answer
    assert store(19.0, "g", 14.0, quiet=20.0) == f"3/4, {quiet} on 1 in flight"


def _frames(width: int, total: int, slots: int, readings) -> list[str]:
    """The generating line's detail (after the bar, before the time) in each frame, each
    drawn after its reading ``(done, failed, per_s, eta_s, seconds since the start)``,
    with 64 in flight."""
    now = [100.0]
    console = Console(file=io.StringIO(), force_terminal=True, width=width)
    display = RunProgress(console, in_flight=lambda: 64, clock=lambda: now[0], slots=slots)
    details = []
    for done, failed, per_s, eta_s, elapsed in readings:
        now[0] = 100.0 + elapsed
        display.update(progress.Reading("demo", done, total, failed, per_s, eta_s))
        console.file.truncate(0)
        console.file.seek(0)
        line = re.sub(r"\x1b\[[0-9;]*m", "", _drawn(display)).splitlines()[-1]
        assert len(line.rstrip()) <= width
        details.append(line[len("generating") :].split(" · ")[0].strip(" ━╸╺"))
    return details


#: A 100,000-generation run on 64 slots: its readings from the first minute to the last
#: generation (rates from 2.5 to 1000 a second, ETAs from hours to seconds).
_LONG_RUN = [
    (1234, 0, 20.5, 4816.0, 60),
    (5000, 0, 2.5, 38000.0, 300),
    (20000, 0, 1000.0, 80.0, 1500),
    (50000, 0, 33.3, 1501.0, 2000),
    (99990, 0, 41.7, 0.3, 3599),
    (100000, 0, 41.7, 0.0, 3600),
]


def test_a_long_run_keeps_its_eta_at_80_columns_until_a_generation_fails():
    """At 80 columns the failures were kept at the width of `100000 failed`, before the
    ETA: a run of 1,000 generations or more lost its ETA for the whole run
    (`1234/100000, 0 failed, 64 in flight · 1 min 45 s`). Until something fails, the
    failures are not shown and the ETA stays, in every frame."""
    details = _frames(80, 100_000, 99, _LONG_RUN)
    assert details[0] == "1234/100000, ETA 1 h 20 min, 64 in flight"
    assert all("ETA" in detail for detail in details[:-1]), details
    assert not any("failed" in detail for detail in details)
    assert details[-1] == "100000/100000"  # done: no ETA, nothing in flight


def test_after_a_first_failure_the_line_keeps_its_parts_for_the_rest_of_the_run():
    """The parts change once, at the first failure (the failures outlast the ETA from then
    on, as the line at its widest does not fit), then keep from frame to frame."""
    failures = [0, 1, 12, 12, 250, 250]
    readings = [
        (done, failed, per_s, eta_s, elapsed)
        for (done, _, per_s, eta_s, elapsed), failed in zip(_LONG_RUN, failures, strict=True)
    ]
    details = _frames(80, 100_000, 99, readings)
    assert details == [
        "1234/100000, ETA 1 h 20 min, 64 in flight",
        "5000/100000, 1 failed, 64 in flight",
        "20000/100000, 12 failed, 64 in flight",
        "50000/100000, 12 failed, 64 in flight",
        "99990/100000, 250 failed, 64 in flight",
        "100000/100000, 250 failed",
    ]
    # where there is room for it all, "0 failed" is there from the start: nothing changes
    wide = _frames(120, 100_000, 99, readings)
    assert wide[0] == "1234/100000, 20.5 gen/s, ETA 1 h 20 min, 0 failed, 64 in flight"
    assert wide[1] == "5000/100000, 2.5 gen/s, ETA 10 h 33 min, 1 failed, 64 in flight"


def test_lanes_waiting_for_another_runs_slots_are_said_so_not_in_flight():
    """Recheck R5 (stop 72): the generating line counted every case started as in flight,
    those whose lanes waited for another run's slots too ("4 in flight", then "waiting on
    4 in flight"). It reads the run's lanes: in flight once a lane holds a slot."""
    from evaluation.run._slot_waits import SlotWaits

    now = [100.0]
    waits = SlotWaits(clock=lambda: now[0])
    lanes = [waits.lane("shared") for _ in range(4)]
    bar = RunProgress(_terminal(), clock=lambda: now[0])  # the run's own lanes, read now
    bar.update(progress.Reading("demo", 0, 8, 0, None, None))

    def line() -> str:
        return bar.progress.columns[2].render(bar.progress.tasks[-1]).plain

    with waits.listed():
        for lane in lanes:
            lane.waits()
        assert line() == "0/8, ETA -, 0 failed, 4 waiting for a slot"
        lanes[0].holds()
        assert line() == "0/8, ETA -, 0 failed, 1 in flight, 3 waiting for a slot"
    assert line() == "0/8, ETA -, 0 failed"  # the run's generation is over
