"""A stream's first run after a model's event, shown against the runs before it.

The watch starts afresh where a model's digest, quantisation, server version or context
changed (``_events``): the new segment learns its own level before it judges. A server
upgrade that made every model worse (exact_match ~0.65 -> 0.39 on all four configs of a
newcomer's series, M9) read ``change –  learning`` on every stream and was then learned
as the normal level. The first run's change against the runs before the event (the
previous segment's, paired on shared cases as every change is) is shown on it with its
interval, and where that interval excludes no change the night says ``learning: moved``,
which sends a calibrated night to the full suite: not judged (the CUSUM still starts
afresh, and a suite change shows nothing across), but no longer silent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from evaluation.series._events import SeriesEvent
from evaluation.series._series import SeriesPoint, same_model
from evaluation.series._stream_verdicts import StreamVerdict


def runs_before_event(
    points: Sequence[SeriesPoint],
    present: Sequence[int],
    start: int,
    model: str,
    segment: Callable[[Sequence[int], Sequence[SeriesEvent]], list[int]],
    events: Sequence[SeriesEvent],
) -> list[int]:
    """The previous segment's points (their indices) of a stream whose segment starts at
    ``points[start]`` because of ``model``'s event there; none where a suite change (no
    paired comparison across it) or nothing starts it. ``segment``: the points since the
    last of ``events`` that touches the config (``_trends._segment``)."""
    at = points[start].experiment
    touching = [
        e for e in events if e.experiment == at and (not e.model or same_model(e.model, model))
    ]
    if not touching or any(not e.model for e in touching):
        return []
    index = {p.experiment: i for i, p in enumerate(points)}
    earlier = [e for e in events if index[e.experiment] < start]
    return segment([i for i in present if i < start], earlier)


def shown_across(
    verdict: StreamVerdict,
    stream: Callable[..., StreamVerdict],
    before: Sequence[SeriesPoint],
    first: SeriesPoint,
    per_night_before: Sequence[pd.Series],
    per_night_first: pd.Series,
) -> StreamVerdict:
    """``verdict`` with its first night's change (and ``moved``) against ``before``:
    that night as the next of the previous segment's stream, its change and interval
    as the watch would show them there (the test's interval where that segment had
    learned, case noise only otherwise). Unchanged where its first night is not
    ``first`` (an accepted run restarted it later) or is judged."""
    if not before or not verdict.nights or verdict.nights[0].experiment != first.experiment:
        return verdict
    night = verdict.nights[0]
    across = stream([*before, first], per_night=[*per_night_before, per_night_first], ran=None)
    last = across.nights[-1]
    if night.judged or last.change is None:
        return verdict
    low, high = last.change_low, last.change_high
    moved = low is not None and high is not None and (low > 0 or high < 0)
    shown = replace(night, change=last.change, change_low=low, change_high=high, moved=moved)
    return replace(verdict, nights=(shown, *verdict.nights[1:]))
