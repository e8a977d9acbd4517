"""The lines a long command prints on stderr while it works (flows.cli._steps): each
step as it begins, and a line every few seconds while one is quiet for long (a
newcomer's first `run` sat 44 s on `starting Prefect…` in a log, with no sign of life)."""

from __future__ import annotations

import threading

from flows.cli._steps import Steps


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Stop:
    """Not set for ``beats`` waits, each ``every_s`` long on the clock, then set."""

    def __init__(self, clock: _Clock, beats: int) -> None:
        self.clock, self.beats = clock, beats

    def wait(self, timeout: float) -> bool:
        if self.beats == 0:
            return True
        self.beats -= 1
        self.clock.now += timeout
        return False


def test_a_quiet_step_says_every_few_seconds_that_it_still_goes_on():
    said: list[str] = []
    clock = _Clock()
    steps = Steps("nc-real", write=said.append, clock=clock, began=97.0)
    steps("starting Prefect")
    steps.beat("starting Prefect", _Stop(clock, 2), 10.0)
    assert said == [
        "nc-real: starting Prefect · 3.0 s",
        "nc-real: starting Prefect, still · 10 s",
        "nc-real: starting Prefect, still · 20 s",
    ]


def test_the_first_still_line_comes_at_10_s_however_late_the_beat_starts():
    """Recheck N6: `run`'s beat started after its Prefect import (about 9 s in), so its
    first line came at 19-22 s and a 13 s start printed none; the docs say 10 s."""
    said: list[str] = []
    clock = _Clock()
    steps = Steps("nc-real", write=said.append, clock=clock, began=91.0)
    steps.beat("starting Prefect", _Stop(clock, 1), 10.0)
    assert said == ["nc-real: starting Prefect, still · 10 s"]


def test_the_beat_runs_beside_the_block_and_ends_with_it():
    said: list[str] = []
    beaten = threading.Event()

    def write(line: str) -> None:
        said.append(line)
        if "still" in line:
            beaten.set()

    steps = Steps("retrain", write=write)
    with steps.quiet_for_long("starting Prefect", 0.001, said=True):
        assert beaten.wait(60)  # the block waits on a call that does not return at once
    assert said[0].startswith("retrain: starting Prefect, still · ")
    assert "evalflow-steps" not in {thread.name for thread in threading.enumerate()}


def test_quiet_says_nothing():
    said: list[str] = []
    steps = Steps("retrain", enabled=False, write=said.append)
    with steps.quiet_for_long("starting Prefect", 0.001):
        steps("fitting quality")
    assert said == []
