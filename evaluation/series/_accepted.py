"""The accepted runs in a stream (``_from_accepts``, each by ``_from_accepted``): a level
confirmed or a comparison started afresh from it, every accept in the series' order,
and the note of alarms after the last that still stand (``_alarm_stands``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from evaluation.series._series import SeriesPoint
from evaluation.series._stream_verdicts import StreamVerdict
from evaluation.series._watch import beyond_noise


def _from_accepts(
    verdict: StreamVerdict,
    accepted: Sequence[int],
    segment: Sequence[SeriesPoint],
    again: Callable[[int], StreamVerdict],
) -> tuple[StreamVerdict, tuple[str, str, str] | None]:
    """Every accepted run of the stream (``accepted``: indices into ``segment``), applied
    in the series' order, each to the verdict the accepts before it left
    (``_from_accepted``; ``again(at)``: the stream's verdict on ``segment[at:]``): a later
    accept never undoes an earlier one's restart (applying the last alone put the nights
    before an earlier restart back into the judged history). ``accepts`` says what each
    did; the note is the last one's, since a later accept acknowledges the alarms before
    it."""
    start, note, done = 0, None, []  # start: where the verdict's nights begin in ``segment``
    for at in accepted:
        verdict, note, why = _from_accepted(
            verdict, at - start, segment[at].experiment, partial(again, at)
        )
        start = at if why else start
        done.append((segment[at].experiment, why))
    return replace(verdict, accepts=tuple(done)), note


def _from_accepted(
    verdict: StreamVerdict, at: int, accepted: str, again: Callable[[], StreamVerdict]
) -> tuple[StreamVerdict, tuple[str, str, str] | None, str]:
    """Accepting run ``accepted``, the verdict's night ``at``, as the baseline accepts its
    level. Only a level the watch did not hold in line with the reference (the run
    alarmed, or moved beyond noise: ``beyond_noise``) is a new one: the stream's
    comparison starts afresh from it (``again``: its verdict from that run on). A run in
    line with the reference confirms that level: the stream keeps its reference and its
    learning state, its earlier alarms count as acknowledged, and a later drop is judged,
    never taken for a learning night (restarting from the good run after a fix bought
    nights in which a full repeat of the outage was "learning"; accepting the good night
    between two outages put the later one in the reference). An alarm after the accepted
    run stands: for the note, the accepted run, the first and the last alarm after it;
    and why the stream restarted there ("": confirmed)."""
    night = verdict.nights[at]
    if beyond_noise(night.evidence, verdict.threshold, night.alarm, night.moved):
        why = (
            "alarmed"
            if night.alarm
            else "moved while learning"
            if night.moved
            else "evidence past half its threshold"
        )
        return replace(again(), accepted=accepted, restarted=why), None, why
    verdict = replace(verdict, accepted=accepted)  # a restart before it stays
    later = [n.experiment for n in verdict.nights[at + 1 :] if n.alarm]
    if not later:
        return verdict, None, ""
    return verdict, (accepted, later[0], later[-1]), ""


def _alarm_stands(
    accepted: str, first: str, last: str, streams: Sequence[str], where: str = ""
) -> str:
    """The note of alarms after the accepted baseline: they stand, and the later runs are
    still compared with the level before them (a run back at it is ok, a repeat alarms
    again); accepting an alarmed run is for a level meant to stay (``where``: where
    `baseline accept` must run, on a database read-only here: ``where_writable``)."""
    which = (
        " and ".join(streams) if len(streams) <= 2 else f"{len(streams)} streams: {streams[0]}, …"
    )
    return (
        f"accepted baseline {accepted} lies before the alarm on {first} ({which}): the alarm "
        "stands, and the later runs are compared with the level before it; only if that "
        f"level is meant to stay, accept {last} or a later run at it"
        + (f", with `evalflow baseline accept` {where}" if where else "")
    )
