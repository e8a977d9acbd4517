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
    again: Callable[..., StreamVerdict],
) -> tuple[StreamVerdict, tuple[str, str, str] | None]:
    """Every accepted run of the stream (``accepted``: indices into ``segment``), applied
    in the series' order, each to the verdict the accepts before it left
    (``_from_accepted``; ``again(at)``: the stream's verdict on ``segment[at:]``): a later
    accept never undoes an earlier one's restart (applying the last alone put the nights
    before an earlier restart back into the judged history), except to go back to the
    level before it (``_back``). ``accepts`` says what each did; the note is the last
    one's, since a later accept acknowledges the alarms before it."""
    start, note, done = 0, None, []  # start: where the verdict's nights begin in ``segment``
    earlier: list[tuple[int, StreamVerdict]] = []  # before each restart: its start, verdict
    for at in accepted:
        name = segment[at].experiment
        new, note, why = _from_accepted(verdict, at - start, name, partial(again, at))
        back = _back(*earlier[-1], start, at, again) if why and earlier else None
        if back is not None:  # the restart at ``start`` given up: its level was not kept
            (start, previous), (new, why) = earlier.pop(), back
            new = replace(new, accepted=name, restarted=previous.restarted)
            note = _stands(new, at - start, name)
        elif why:
            earlier.append((start, verdict))
            start = at
        verdict = new
        done.append((name, why))
    return replace(verdict, accepts=tuple(done)), note


BACK = "back to its level before "
"""How an accept's ``why`` begins where it went back to a level given up (``_back``)."""


def _back(
    start: int,
    before: StreamVerdict,
    restart: int,
    at: int,
    again: Callable[..., StreamVerdict],
) -> tuple[StreamVerdict, str] | None:
    """An accepted run ``at`` of a stream restarted at ``restart`` (an earlier accept took
    a degraded level there), where the run is back at the level before: ``before`` (the
    verdict from ``start`` that the restart replaced) with the nights of the level given
    up, from the night its evidence began to build to the run before ``at``, left out of
    the reference as an alarmed night is, and the run judged in line with the rest. A
    stream accepted degraded and then back to normal restarted again and lost its
    history: learning anew, blind for runs, compared with two nights. None where the run
    is not in line with that level (then it restarts: ``_from_accepted``), or where no
    night came before the level given up."""
    nights = before.nights
    cut = restart - start
    while cut > 0 and nights[cut - 1].evidence > 0 and not nights[cut - 1].alarm:
        cut -= 1  # the level given up began where its evidence began to build
    if cut == 0:
        return None
    verdict = again(start, [cut <= i < at - start for i in range(len(nights))])
    night = verdict.nights[at - start]
    if beyond_noise(night.evidence, verdict.threshold, night.alarm, night.moved):
        return None
    gone = [n.experiment for n in nights[cut : at - start]]
    span = gone[0] if len(gone) == 1 else f"{gone[0]}…{gone[-1]}"
    return verdict, f"{BACK}{gone[0]} ({span} left out of its reference)"


def _stands(verdict: StreamVerdict, at: int, accepted: str) -> tuple[str, str, str] | None:
    """The note of alarms after accepted night ``at`` that still stand (``_alarm_stands``):
    the accepted run, the first and the last of them; None where none."""
    later = [n.experiment for n in verdict.nights[at + 1 :] if n.alarm]
    return (accepted, later[0], later[-1]) if later else None


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
    return verdict, _stands(verdict, at, accepted), ""


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
