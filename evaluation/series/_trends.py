"""The watch over a stored series: for every config and metric, its values night by
night, the change against the nights before (paired on shared cases), the CUSUM's
evidence and its alarms (``_watch``), restarted at a comparability event that changes
what ran (``_events``: a suite, a model's weights; after a model's, its first run is
judged against the runs before: ``_across``), judged across one that leaves the weights
as they were (a server's version over the same digest).

Streams per config: each quality metric the runs recorded (higher is better unless the
metric says otherwise), ``failure_rate`` (per case, the share of failed generations),
``latency_p95`` (of successful generations) and ``tokens_per_s`` (per case, the mean of
log tokens/s: lower is worse). The series' K streams share its false-alarm promise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial as bound
from itertools import pairwise

import pandas as pd
from sqlmodel import Session

from evaluation.errors import MetricError
from evaluation.metrics import NOT_QUALITY, get_metric
from evaluation.series._accepted import _alarm_stands, _from_accepts
from evaluation.series._across import judged_across, runs_before_event
from evaluation.series._calibrated_level import (
    SubsetEstimates,
    _estimated,
    _subset,
    _subset_mean,
    _weights,
)
from evaluation.series._events import SeriesEvent, series_events
from evaluation.series._frames import _Frames
from evaluation.series._greedy import greedy_changes
from evaluation.series._series import (
    SeriesPoint,
    lone_config_pairs,
    point_of,
    same_model,
    series_experiments,
    shown_labels,
)
from evaluation.series._skip import check_skip
from evaluation.series._stream import _stream
from evaluation.series._stream_verdicts import OPERATIONAL, SeriesWatch, StreamVerdict
from evaluation.series._watch import WatchError, WatchSettings
from evaluation.storage.snapshot import where_writable


def watch_series(
    session: Session,
    series: str,
    settings: WatchSettings | None = None,
    banks: SubsetEstimates | None = None,
) -> SeriesWatch:
    """The watch's verdicts on series ``series`` as stored now (SeriesNotFound when it
    has no run). When its last completed run was a calibrated night, every night is
    watched on that night's calibrated cases (a full night's others set aside), and a
    quality stream is judged in the full-suite estimate of ``banks`` (the item bank:
    each case weighted by how much it moves the estimate), its calibrated nights shown as
    estimates; without a usable bank, on the cases' plain mean, with a note."""
    settings = settings or WatchSettings()
    experiments = series_experiments(session, series)
    points, (shared, n_key) = shown_labels([point_of(session, e) for e in experiments])
    events = series_events(points)
    restarting = [e for e in events if e.restarts]  # the same weights: the stream goes on
    notes: list[str] = []
    done = [i for i, p in enumerate(points) if p.status == "completed"]
    if len(done) < len(points):
        notes.append(f"{len(points) - len(done)} run(s) not completed: shown, not judged")
    relabelled = _label_changes(points, done)
    notes += [_label_note(points, config, olds) for config, olds in relabelled.items()]
    linked = {old for olds in relabelled.values() for old in olds.values()}
    configs, stale = _watched_configs(points, done, linked)
    if stale:
        notes.append(
            f"not watched, not in the last completed run ({points[done[-1]].experiment}): "
            + ", ".join(stale)
        )
    frames = _Frames(session, experiments)
    greedy_at = len(notes)  # its notes go here once the verdicts say which nights alarmed
    subset = _subset(points, done)
    if done and points[done[-1]].watched == "fallback":
        last = points[done[-1]]
        notes.append(
            f"{last.experiment} was to watch on the calibrated level and ran the full suite "
            f"instead: {last.why}"
        )
    if subset:
        last = points[done[-1]]
        notes.append(
            f"watched on the calibrated level: {len(subset)} of "
            f"{last.suite_cases} cases each night (a full night's others set "
            "aside), quality judged in the item bank's full-suite estimate"
            + (f"; {last.experiment} escalated to the full suite: {last.why}" * bool(last.why))
        )
    inputs = []
    for config in configs:
        olds = relabelled.get(config, {})  # run -> the hash its label had there
        present = [i for i in done if config in points[i].configs or points[i].experiment in olds]
        indices = _segment(points, present, config, restarting)
        segment = [_as(points[i], olds.get(points[i].experiment), config) for i in indices]
        before = []  # the runs before the model's event its segment starts at
        if indices and not olds and not subset:
            model = next(points[i].config_models.get(config, "") for i in present)
            earlier = runs_before_event(
                points,
                present,
                indices[0],
                model,
                lambda kept, evs, config=config: _segment(points, list(kept), config, evs),
                restarting,
            )
            before = [points[i] for i in earlier]
        accepted = [j for j, p in enumerate(segment) if p.accepted_baseline]
        ran = [olds.get(p.experiment, config) for p in segment] if olds else None
        for metric, higher in _metrics(segment):
            per_night = [
                frames.per_case(p.experiment, olds.get(p.experiment, config), metric)
                for p in segment
            ]
            counts = [int(s.notna().sum()) for s in per_night]
            if subset:
                per_night = [s[s.index.isin(subset)] for s in per_night]
            if any(s.notna().any() for s in per_night):  # measured at all
                inputs.append(
                    (segment, config, metric, higher, per_night, accepted, ran, counts, before)
                )
    settings.refuse_no_threshold(len(inputs))
    h = settings.threshold(len(inputs))
    verdicts = []
    plain: dict[tuple[str, str], list[str]] = {}  # (metric, why) -> the configs' labels
    after_accepted: dict[tuple[str, str, str], list[str]] = {}  # alarms after the accepted
    for segment, config, metric, higher, per_night, accepted, ran, counts, before in inputs:
        weights = None
        if subset and metric not in OPERATIONAL:
            weights, why = _weights(banks, segment, config, metric, per_night)
            if why:
                plain.setdefault((metric, why), []).append(segment[-1].configs.get(config, config))
        fixed = {"config": config, "metric": metric, "higher": higher, "settings": settings}
        stream = bound(_stream, **fixed, streams=len(inputs), weights=weights)
        prior = [frames.per_case(p.experiment, config, metric) for p in before]
        taught = _taught(stream, before, prior)
        verdict = stream(segment, per_night=per_night, ran=ran, prior=taught)
        if accepted:  # every accept, in order: each restart from the stream's run ``at`` on
            verdict, note = _from_accepts(
                verdict,
                accepted,
                segment,
                _from_run(stream, segment, per_night, ran),
            )
            if note:
                after_accepted.setdefault(note, []).append(f"{metric} of {verdict.label}")
        if before:  # its first run judged against the runs before the model's event
            verdict = judged_across(verdict, stream, before, segment[0], prior, per_night)
        if weights is not None and banks is not None:  # the nights the verdict kept
            n = len(verdict.nights)
            verdict = _estimated(
                verdict, banks, segment[-n:], config, metric, per_night[-n:], weights, counts[-n:]
            )
        elif subset and metric not in OPERATIONAL:
            n = len(verdict.nights)
            verdict = _subset_mean(
                verdict, len(subset), segment[-1].suite_cases, per_night[-n:], counts[-n:]
            )
        if subset:
            verdict = replace(verdict, cases=f"{len(subset)} of {segment[-1].suite_cases} cases")
        if config in relabelled:
            steps = _label_steps(points, config, relabelled[config])
            verdict = replace(verdict, relabelled=", ".join(_step(*step) for step in steps))
        verdicts.append(verdict)
    alarmed = {n.experiment for s in verdicts for n in s.nights if n.alarm}
    partial = {(s.config, n.experiment) for s in verdicts for n in s.nights if n.partial}
    notes[greedy_at:greedy_at] = greedy_changes(
        session, points, done, configs, frames.generations, alarmed, partial
    )
    notes += [f"{metric} of {', '.join(labels)}: {why}" for (metric, why), labels in plain.items()]
    where = where_writable(session.get_bind()) if after_accepted else ""  # a read-only share
    notes += [_alarm_stands(*key, streams, where) for key, streams in after_accepted.items()]
    notes += [
        f"{v.metric} of {v.label} on {v.judged_night.experiment}: an alarm on speed set down "
        f"to watch, {v.judged_night.load}; it counts as no alarm (--fail-on-alarm, the "
        "nightly), and the night leaves the reference as an alarmed one does (docs/trends.md)"
        for v in verdicts
        if v.judged_night.load
    ]
    return SeriesWatch(
        series,
        tuple(points),
        tuple(events),
        tuple(verdicts),
        settings,
        h,
        tuple(notes),
        shared,
        n_key=n_key,
    )


def _from_run(
    stream: Callable[..., StreamVerdict],
    segment: Sequence[SeriesPoint],
    per_night: Sequence[pd.Series],
    ran: Sequence[str] | None,
) -> Callable[..., StreamVerdict]:
    """The stream's verdict from its run ``at`` on: its comparison restarted there (an
    accepted run that alarmed or moved beyond noise); ``left_out`` (per night from
    ``at``): nights kept out of its reference (``_accepted._back``)."""

    def again(at: int, left_out: Sequence[bool] | None = None) -> StreamVerdict:
        runs = None if ran is None else ran[at:]
        return stream(segment[at:], per_night=per_night[at:], ran=runs, left_out=left_out)

    return again


def _taught(
    stream: Callable[..., StreamVerdict],
    before: Sequence[SeriesPoint],
    per_night: Sequence[pd.Series],
) -> list[pd.Series]:
    """The values of the runs before a model's event whose night-to-night changes teach
    the new model's stream its spread (``_stream``'s ``prior``): those the old stream did
    not alarm on, as its own spread leaves an alarmed night out."""
    if not before:
        return []
    old = stream(before, per_night=per_night, ran=None)
    return [values for values, night in zip(per_night, old.nights, strict=True) if not night.alarm]


def check_trends_skip(session: Session, series: str, skip: Sequence[str]) -> None:
    """WatchError for a ``trends --skip`` name that is no metric series ``series`` is
    watched on (a quality metric its runs recorded, or an operational one), or for all of
    them, as the gate checks its own (``check_skip``); before the watch runs, so that a
    refused command writes nothing, not even the kept verdict."""
    if not skip:
        return
    recorded = (m for e in series_experiments(session, series) for m in e.metrics or ())
    quality = [m for m in dict.fromkeys(recorded) if m not in NOT_QUALITY]
    known = [*quality, *OPERATIONAL]
    of = f"the watch of series {series!r}"
    check_skip(skip, known, WatchError, noun="metric", of=of, nothing="watched")


def _watched_configs(
    points: Sequence[SeriesPoint], done: list[int], linked: set[str]
) -> tuple[list[str], list[str]]:
    """The configs of the last completed run (those the spec runs now), and the labels of
    the others an earlier run had (a config dropped from the spec, or the old text of a
    template changed under its name: told apart by their hash), but those ``linked``
    to a current config by its label (``_label_changes``). Only the first are watched
    and counted in the series' false-alarm budget."""
    if not done:
        return [], []
    current = points[done[-1]].configs
    labels: dict[str, str] = {}
    for i in done:
        labels.update(points[i].configs)
    taken = set(current.values())
    stale = [
        f"{label} (config {c[:8]}; the current one of that label is another)"
        if label in taken
        else label
        for c, label in labels.items()
        if c not in current and c not in linked
    ]
    return list(current), stale


def _label_changes(points: Sequence[SeriesPoint], done: list[int]) -> dict[str, dict[str, str]]:
    """Per watched config, the earlier completed runs where its stream ran another
    config: run -> that config's hash. Its label named one config there (a template's
    text edited under its name, a setting the label does not show), or, walking back
    from the last run, the label changed where the run before had the one config of its
    model and the run after it too (``lone_config_pairs``: a grid value the label shows
    was edited); the runs before that are read under the old label. The stream goes on
    across the change, as the gate pairs a prompt edit by label: the change is judged,
    not hidden by a fresh start."""
    out: dict[str, dict[str, str]] = {}
    if not done:
        return out
    for config, label in points[done[-1]].configs.items():
        olds: dict[str, str] = {}
        after, name = points[done[-1]], label
        for i in reversed(done[:-1]):
            p = points[i]
            ran = olds.get(after.experiment, config)  # the stream's config in ``after``
            named = [h for h, x in p.configs.items() if x == name]
            paired = lone_config_pairs(p, after).get(ran) if ran in after.configs else None
            if config in p.configs:  # the config itself: earlier runs by its own label
                name = label
            elif len(named) == 1:
                olds[p.experiment] = named[0]
            elif paired is not None:
                olds[p.experiment], name = paired, p.configs[paired]
            after = p
        if olds:
            out[config] = olds
    return out


def _label_steps(
    points: Sequence[SeriesPoint], config: str, olds: dict[str, str]
) -> list[tuple[str, str, str, str, str]]:
    """Where the stream of ``config`` changed config: (the first run of the new one, the
    old and the new label, the old and the new hash), oldest first."""
    ran = [
        (p.experiment, p.configs[h], h)
        for p in points
        if config in p.configs or p.experiment in olds
        for h in [olds.get(p.experiment, config)]
    ]
    return [(run, a, b, h, k) for (_, a, h), (run, b, k) in pairwise(ran) if h != k]


def _step(run: str, old: str, new: str, *_: str) -> str:
    """A change in a stream's heading: the run, with the labels where the label changed
    (``r10-n05 (n=32 -> n=3)``)."""
    return f"{run} ({old} -> {new})" if old != new else run


def _label_note(points: Sequence[SeriesPoint], config: str, olds: dict[str, str]) -> str:
    """The note on a stream whose config changed: where, from which config to which (the
    labels, or the hashes under one label), and that its runs before are compared with
    the runs after as one stream."""
    label = next(p.configs[config] for p in points if config in p.configs)
    steps = "; ".join(
        f"at {run} ({a} -> {b})" if a != b else f"at {run} ({h[:8]} -> {k[:8]})"
        for run, a, b, h, k in _label_steps(points, config, olds)
    )
    return (
        f"{label}: its config changed {steps} (a template's text, a setting its label "
        "does not show, or the one config of its model edited): its runs before and after "
        "are one stream, judged across the change, as `evalflow gate` pairs the two"
    )


def _as(point: SeriesPoint, old: str | None, config: str) -> SeriesPoint:
    """``point`` with the label's config there (``old``) named ``config``, as the
    stream reads it; ``point`` itself where it ran ``config``."""
    if old is None:
        return point
    return replace(
        point,
        configs={**point.configs, config: point.configs[old]},
        config_models={**point.config_models, config: point.config_models.get(old, "")},
        values={**point.values, config: point.values.get(old, {})},
    )


def _segment(
    points: Sequence[SeriesPoint], present: list[int], config: str, events: Sequence[SeriesEvent]
) -> list[int]:
    """The completed points of ``config`` since the last of ``events`` that touches it
    (a suite change, or a change of its model; the watch passes those that restart it:
    ``SeriesEvent.restarts``); the accepted runs are applied per stream
    (``_from_accepts``)."""
    model = next(points[i].config_models.get(config, "") for i in present) if present else ""
    start = 0
    index = {p.experiment: i for i, p in enumerate(points)}
    for event in events:
        if not event.model or same_model(event.model, model):
            start = max(start, index[event.experiment])
    return [i for i in present if i >= start]


def _metrics(points: Sequence[SeriesPoint]) -> list[tuple[str, bool]]:
    names = list(dict.fromkeys(m for p in points for m in p.metrics))
    out = []
    for name in names:
        if name in NOT_QUALITY:
            continue
        try:
            out.append((name, get_metric(name).higher_is_better))
        except MetricError:
            continue
    return [*out, ("failure_rate", False), ("latency_p95", False), ("tokens_per_s", True)]
