"""A run's rate and ETA: over the last minute, not since the start; durations as read."""

from __future__ import annotations

import pytest

from evaluation.run import Rate, format_duration, progress_line


def test_the_rate_follows_the_last_minute_and_gives_the_time_left():
    rate = Rate(window_s=60.0)
    assert rate.per_s() is None and rate.eta_s(10) is None
    rate.add(0.0, 0)
    for t in range(1, 121):  # 4/s for two minutes ...
        rate.add(float(t), 4 * t)
    assert rate.per_s() == pytest.approx(4.0)
    for t in range(121, 181):  # ... then 1/s (a bigger model): a minute later, 1/s
        rate.add(float(t), 480 + (t - 120))
    assert rate.per_s() == pytest.approx(1.0)
    assert rate.eta_s(90) == pytest.approx(90.0)
    assert rate.eta_s(0) == 0.0


def test_durations_read_as_people_say_them():
    assert [
        format_duration(s) for s in (0, 40.2, 125, 600, 1860, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)
    ] == [
        "0 s",
        "41 s",
        "2 min 5 s",
        "10 min",
        "31 min",
        "3 h 05 min",
        "2 d 4 h",
    ]


def test_the_progress_line_says_counts_rate_eta_and_failures():
    rate = Rate()
    rate.add(0.0, 0)
    assert progress_line(0, 800, 0, rate) == "0/800 generations (0%), ETA unknown yet"
    rate.add(10.0, 40)
    assert progress_line(40, 800, 2, rate) == (
        "40/800 generations (5%), 4.0/s, ETA 3 min 10 s, 2 failed"
    )
    assert progress_line(800, 800, 0, rate) == "800/800 generations (100%), 4.0/s"
