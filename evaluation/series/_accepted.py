"""An accepted baseline in a stream (``_from_accepted``): a level confirmed or a
comparison started afresh from it, and the note of alarms after it that still stand
(``_alarm_stands``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from evaluation.series._series import SeriesPoint
from evaluation.series._stream import _stream
from evaluation.series._stream_verdicts import StreamVerdict
from evaluation.series._watch import WatchSettings, beyond_noise


def _from_accepted(
    verdict: StreamVerdict,
    at: int,
    segment: Sequence[SeriesPoint],
    config: str,
    metric: str,
    higher: bool,
    per_night: Sequence[pd.Series],
    settings: WatchSettings,
    streams: int,
    weights: pd.Series | None = None,
    ran: Sequence[str] | None = None,
) -> tuple[StreamVerdict, tuple[str, str, str] | None]:
    """Accepting run ``segment[at]`` as the baseline accepts its level. Only a level the
    watch did not hold in line with the reference (the run alarmed, or moved beyond
    noise: ``beyond_noise``) is a new one: the stream's comparison starts afresh from
    it. A run in line with the reference confirms that level: the stream keeps its
    reference and its learning state, its earlier alarms count as acknowledged, and a
    later drop is judged, never taken for a learning night (restarting from the good
    run after a fix bought nights in which a full repeat of the outage was "learning";
    accepting the good night between two outages put the later one in the reference).
    An alarm after the accepted run stands: for the note, the accepted run, the first
    and the last alarm after it."""
    night = verdict.nights[at]
    accepted = segment[at].experiment
    if beyond_noise(night.evidence, verdict.threshold, night.alarm, night.moved):
        why = (
            "alarmed"
            if night.alarm
            else "moved while learning"
            if night.moved
            else "evidence past half its threshold"
        )
        again = _stream(
            segment[at:],
            config,
            metric,
            higher,
            per_night[at:],
            settings,
            streams,
            weights,
            None if ran is None else ran[at:],
        )
        return replace(again, accepted=accepted, restarted=why), None
    verdict = replace(verdict, accepted=accepted)
    later = [n.experiment for n in verdict.nights[at + 1 :] if n.alarm]
    if not later:
        return verdict, None
    return verdict, (accepted, later[0], later[-1])


def _alarm_stands(accepted: str, first: str, last: str, streams: Sequence[str]) -> str:
    """The note of alarms after the accepted baseline: they stand, and the later runs are
    still compared with the level before them (a run back at it is ok, a repeat alarms
    again); accepting an alarmed run is for a level meant to stay."""
    which = (
        " and ".join(streams) if len(streams) <= 2 else f"{len(streams)} streams: {streams[0]}, …"
    )
    return (
        f"accepted baseline {accepted} lies before the alarm on {first} ({which}): the alarm "
        "stands, and the later runs are compared with the level before it; only if that "
        f"level is meant to stay, accept {last} or a later run at it"
    )
