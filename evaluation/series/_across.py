"""A stream's first run after a model's event, judged against the runs before it.

The watch starts afresh where a model's weights changed, or may have (``_events``: a new
digest; a quantisation, server version or context over a digest not known the same): the
new segment learns the new model's level before it judges. A server upgrade that made
every model worse (exact_match ~0.65 -> 0.39 on all four configs of a newcomer's series,
M9) read ``change –  learning`` on every stream and was then learned as the normal level:
no alarm, nothing for ``--fail-on-alarm`` or the gauge. That first run is judged as the
next night of the previous segment's stream (paired on shared cases, its z against that
stream's spread, its CUSUM continued from that stream's evidence): a drop beyond noise
there alarms, as it would have without the event, and a learning night whose change
excludes none still says ``learning: moved`` where that segment had not learned enough
to judge. One judged night more of the old stream, costing what one night does
(benchmarks/perf/trends_benchmark.py, ``requant``); the new segment's CUSUM starts
afresh after it. A suite change shows nothing across (no paired comparison), and the
same weights under a new server restart nothing (``SeriesEvent.restarts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from evaluation.series._events import SeriesEvent
from evaluation.series._series import SeriesPoint, same_model
from evaluation.series._stream_verdicts import StreamVerdict

#: What the first night after a model's event takes from the old stream's next night.
_JUDGED = (
    "change",
    "change_low",
    "change_high",
    "z",
    "p",
    "evidence",
    "alarm",
    "judged",
    "moved",
    "load",  # a speed alarm the machine's load explains, set down
)


def runs_before_event(
    points: Sequence[SeriesPoint],
    present: Sequence[int],
    start: int,
    model: str,
    segment: Callable[[Sequence[int], Sequence[SeriesEvent]], list[int]],
    events: Sequence[SeriesEvent],
) -> list[int]:
    """The runs before (their indices) a stream whose segment starts at ``points[start]``
    because of ``model``'s event there: after a new digest, the old digest's runs since
    the suite last changed; after another event, the previous segment's points; none
    where a suite change (no paired comparison across it) or nothing starts it.
    ``segment``: the points since the last of ``events`` that touches the config
    (``_trends._segment``)."""
    at = points[start].experiment
    touching = [
        e for e in events if e.experiment == at and (not e.model or same_model(e.model, model))
    ]
    if not touching or any(not e.model for e in touching):
        return []
    index = {p.experiment: i for i, p in enumerate(points)}
    earlier = [e for e in events if index[e.experiment] < start]
    # the runs up to the last that said what changed: a run after it said nothing of it
    # and may have served the new model already (recheck's R4: a server that said no
    # version one night, the next a new one, had that night in the old model's reference)
    said = min(index[e.previous] for e in touching)
    kept = [i for i in present if i <= said]
    old = {(e.before, e.host) for e in touching if e.kind == "model_digest_changed"}
    if len(old) != 1:
        return segment(kept, earlier)
    # A new digest: the old weights' runs since the suite last changed, wherever they
    # ran. Only the last segment's would be one run where the digest flaps between two
    # (weights A, B, A, B): never learned, a worse B never judged again (recheck's R1).
    ((digest, host),) = old
    since = segment(kept, [e for e in earlier if not e.model])
    return [i for i in since if _digest(points[i], model, host) == digest]


def _digest(point: SeriesPoint, model: str, host: str) -> str:
    """The digest ``model`` ran with on ``host`` in ``point`` (on its one other host where
    the hosts were renamed, as ``_events`` pairs them); "" where none was recorded."""
    found = [m for m in point.models if same_model(m.model, model)]
    on_host = [m for m in found if m.host == host]
    ran = on_host or (found if len(found) == 1 else [])
    return ran[0].digest if ran else ""


def judged_across(
    verdict: StreamVerdict,
    stream: Callable[..., StreamVerdict],
    before: Sequence[SeriesPoint],
    first: SeriesPoint,
    per_night_before: Sequence[pd.Series],
    per_night: Sequence[pd.Series],
) -> StreamVerdict:
    """``verdict`` with its first night (``first``, its values ``per_night[0]``) judged
    against ``before``: that night as the next of the previous segment's stream (its
    change, interval, z, p, evidence and alarm as the watch gives them there). Where
    that segment had not learned (a new model in a series' first runs), it is judged
    with the spread learned by the run that first judges the new model's stream
    (``Night.judged_on``): the changes of both models' runs until then; until that run,
    its change with case noise only and ``moved``, not judged (a worse model there was
    learned as the level, never alarmed: recheck's R5). Where the night is the stream's
    judged one, or judged on it, the alarm's words (since when, by how much, against which
    nights, the flipped cases) are the old stream's (``across``). Unchanged where its
    first night is not ``first`` (an accepted run restarted it later) or is judged
    already."""
    if not before or not verdict.nights or verdict.nights[0].experiment != first.experiment:
        return verdict
    night = verdict.nights[0]
    across = stream([*before, first], per_night=[*per_night_before, per_night[0]], ran=None)
    last, late = across.nights[-1], ""
    if night.judged or last.change is None:
        return verdict
    learned = next((j for j, n in enumerate(verdict.nights) if n.judged), None)
    if not last.judged and learned is not None:
        again = stream(
            [*before, first],
            per_night=[*per_night_before, per_night[0]],
            ran=None,
            prior=per_night[:learned],
        )
        if again.nights[-1].judged:
            across, last, late = again, again.nights[-1], verdict.nights[learned].experiment
    judged = replace(night, **{name: getattr(last, name) for name in _JUDGED}, judged_on=late)
    verdict = replace(verdict, nights=(judged, *verdict.nights[1:]))
    if verdict.alarm_night is not judged or not last.judged:
        return verdict
    words = {name: getattr(across, name) for name in ("since", "by", "reference", "flipped")}
    return replace(verdict, **words, across=across)
