"""A 0–1 metric's change interval as `trends` and the monitor show it: cut to [-1, 1],
as every interval is cut to its scale (evaluation/calibration/_shown.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from evaluation.series._render import _change_interval
from evaluation.series._series import SeriesPoint
from evaluation.series._stream import _stream
from evaluation.series._watch import WatchSettings

CASES = [f"c{i}" for i in range(36)]
RIGHT = (np.random.default_rng(3).random(36) < 0.55).astype(float)  # 20 of 36 right


def _night(wrong: int) -> pd.Series:
    values = RIGHT.copy()
    values[np.flatnonzero(values)[:wrong]] = 0.0  # ``wrong`` right answers turn wrong
    return pd.Series(values, index=CASES)


def _points(n: int) -> list[SeriesPoint]:
    start = datetime(2026, 11, 29, 9, 18)
    return [
        SeriesPoint(
            experiment=f"wn-{i}",
            time=start + timedelta(minutes=2 * i),
            status="completed",
            simulated=True,
            accepted_baseline=False,
            suite="qa",
            suite_digest="",
            metrics=("exact_match",),
            configs={"c": "sim-large:8b t=0 concise"},
            config_models={"c": "sim-large:8b"},
            values={},
        )
        for i in range(n)
    ]


def test_a_unit_metrics_change_interval_stays_within_minus_one_and_one():
    # ncwatch-4: a collapse on a learning night (wn-2) widened the spread that judged the
    # same collapse on wn-5: `change -0.433 [-1.197, +0.330]`, past what a 0–1 score can move
    wrong = [0, 1, 14, 0, 1, 19]
    stream = _stream(
        _points(6), "c", "exact_match", True, [_night(w) for w in wrong], WatchSettings(), 60
    )
    last = stream.last
    assert last.judged and last.change < -0.4
    assert last.change_low == -1.0 and last.change_high > 0  # the upper end as the test's
    assert 0.025 < last.p < 0.5  # the p is the test's, not the cut interval's
    assert _change_interval(last, "exact_match") == "-0.439 [-1.000, +0.191]"
