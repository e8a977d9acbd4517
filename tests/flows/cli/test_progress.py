"""The terminal progress bar of `run`: fed by the generation progress in this process,
it shows done/total, rate, ETA and failures so far; off when stderr is not a terminal."""

from __future__ import annotations

import asyncio
import io
import logging

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
    assert "demo" in text and "7/10" in text and "2 failed" in text
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


def test_after_generation_the_bar_says_which_step_is_under_way(monkeypatch):
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    bar = RunProgress(_terminal())
    monkeypatch.setattr(progress, "LISTENERS", [bar.update])
    bar.update(progress.Reading("demo", 10, 10, 0, 5.0, 0.0))
    progress.announce_step("demo", "comparing configs")
    text = _drawn(bar)
    assert "10/10" in text and "comparing configs…" in text


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
        return SimpleNamespace(item=item, result=SimpleNamespace(latency_s=latency), ok=True)

    now[0] = 10.0
    asyncio.run(tracker.stored([record("a", 10.0) for _ in range(4)]))  # 4 slots, 10 s each
    # b's 4 generations at 30 s each on 4 slots: 30 s (the count-based rate said 10 s)
    assert "4/8 generations (50%), 0.4/s, ETA 30 s" in tracker.description()
    console = _terminal()
    bar = RunProgress(console)
    seen = []
    monkeypatch.setattr(progress, "LISTENERS", [seen.append, bar.update])
    asyncio.run(tracker.advance(0))
    assert seen[-1].eta_s == 30.0  # the bar is given the work mix's ETA, not the count's
    console.print(bar.progress.get_renderable())
    assert "ETA 30 s" in console.file.getvalue()


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
    last = console.file.getvalue().rsplit("demo ", 1)[1]
    return last[: last.index("━")]


@pytest.mark.parametrize("color_system", ["standard", "256", "truecolor"])
def test_a_finished_bar_is_not_drawn_in_the_empty_bars_grey(color_system):
    """On a 16-colour terminal rich's RGB green of a finished bar became the same grey
    (SGR 90) as the empty bar: a complete run looked like one that had not started."""
    empty, finished = _bar_colour(0, color_system), _bar_colour(2, color_system)
    assert empty and finished and empty != finished
