"""The watch over a stored series: for every config and metric, its values night by
night, the change against the nights before (paired on shared cases), the CUSUM's
evidence and its alarms (``_watch``), never across a comparability event (``_events``).

Streams per config: each quality metric the runs recorded (higher is better unless the
metric says otherwise), ``failure_rate`` (per case, the share of failed generations),
``latency_p95`` (of successful generations) and ``tokens_per_s`` (per case, the mean of
log tokens/s: lower is worse). The series' K streams share its false-alarm promise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from math import erfc, exp, floor, log10, sqrt
from typing import Protocol

import numpy as np
import pandas as pd
from sqlmodel import Session

from evaluation.errors import MetricError
from evaluation.metrics import NOT_QUALITY, get_metric
from evaluation.series._events import SeriesEvent, series_events
from evaluation.series._greedy import greedy_changes
from evaluation.series._series import SeriesPoint, point_of, series_experiments, shown_labels
from evaluation.series._watch import (
    ESCALATE_SHARE,
    LATENCY_FLOOR,
    WatchSettings,
    beyond_noise,
    mean_stream_z,
    p95_stream_z,
    watch_stream,
)
from evaluation.storage.repository import generations_frame, scores_frame
from evaluation.wording import PARTIAL_RUN

OPERATIONAL = ("failure_rate", "latency_p95", "tokens_per_s")
PARTIAL_SHARE = 0.5  # a run with fewer cases than this share of the fullest is partial


@dataclass(frozen=True)
class Night:
    """One point of one stream: the value shown (with its 95% interval where known),
    the change against the reference in the metric's own units (tonight − reference),
    its z in the worse direction and one-sided p, the CUSUM after it, and the alarm."""

    experiment: str
    value: float | None
    low: float | None = None
    high: float | None = None
    change: float | None = None
    change_low: float | None = None
    change_high: float | None = None
    z: float | None = None
    p: float | None = None
    evidence: float = 0.0
    alarm: bool = False
    judged: bool = False
    partial: bool = False
    """Fewer than half the cases of the stream's fullest run (a smoke or subset level):
    shown apart, neither judged nor part of the later nights' reference."""
    drawn: float | None = None
    """What the sparkline draws: ``value``, or for a night run on other cases than the
    stream's fullest night its level on that night's cases (:func:`_drawn`)."""
    scored: bool = True
    """False where the run scored none of the config's cases on this metric (a metric
    rescored into earlier runs only): nothing to show, and not partial; not judged."""
    moved: bool = False
    """A learning night (not judged yet) whose change's 95% interval, on case noise
    alone, excludes no change: shown as moved, never as "ok", since it becomes part of
    the reference the later nights are judged against."""


class SubsetEstimates(Protocol):
    """What the watch asks of an item bank for a series watched on the calibrated level
    (``evaluation.itembank.BankEstimates`` answers; the series room does not import the
    item bank room, which imports it)."""

    def weights(
        self, point: SeriesPoint, config: str, metric: str, reference: pd.Series
    ) -> tuple[pd.Series | None, str]:
        """Per case of ``reference`` (the config's per-case means on the calibrated
        cases, over the nights before ``point``): how much the full-suite estimate moves
        per unit of the case's score; None and why where the bank cannot serve."""
        ...

    def estimate(
        self, point: SeriesPoint, config: str, metric: str, scores: pd.Series
    ) -> tuple[float, float, float, str]:
        """The config's full-suite estimate from ``scores`` (per case) on ``point``'s
        night: mean, low, high, and its text (``estimated from 30 of 300 cases (item
        bank v3)``)."""
        ...


@dataclass(frozen=True)
class StreamVerdict:
    """One config × metric of a series over its current comparable segment."""

    config: str
    label: str
    metric: str
    higher_is_better: bool
    nights: tuple[Night, ...]
    threshold: float
    segment_start: str
    since: str | None = None  # the first night of the evidence behind the last alarm/run
    by: float | None = None  # mean change over those nights
    flipped: tuple[str, ...] = ()  # cases right in the reference, wrong tonight
    reference: tuple[str, ...] = ()  # the full nights before ``since`` it is compared with
    estimated: str = ""  # a calibrated night's last value: how it was estimated
    cases: str = ""  # "4 of 36 cases": what each night is watched on, on the calibrated level
    accepted: str | None = None  # the accepted baseline among its nights
    restarted: str = ""  # why its comparison starts afresh at ``accepted`` ("": confirmed)

    @property
    def last(self) -> Night:
        return self.nights[-1]

    @property
    def alarm(self) -> bool:
        return self.last.alarm

    @property
    def judged_night(self) -> Night:
        """The last night that is not partial: a smoke run after it is not judged and
        hides none of its verdict."""
        return next((n for n in reversed(self.nights) if not n.partial), self.last)

    @property
    def last_alarm(self) -> str | None:
        """The last alarm not acknowledged: none up to the accepted baseline (accepting a
        run confirms the stream's level there, or restarts it)."""
        names = [n.experiment for n in self.nights]
        start = names.index(self.accepted) + 1 if self.accepted in names else 0
        alarms = [n.experiment for n in self.nights[start:] if n.alarm]
        return alarms[-1] if alarms else None

    @property
    def alarm_nights(self) -> tuple[str, ...]:
        return tuple(n.experiment for n in self.nights if n.alarm)

    @property
    def status(self) -> str:
        """``ALARM`` on an alarmed last night; ``learning: moved`` on a learning night that
        moved; ``watch`` when its evidence reached half the threshold (with a moved
        learning night: ``beyond_noise``, what sends a calibrated night to the full
        suite); else ``ok``. The one label that ``evalflow trends``, the monitor's series
        page and the nightly's artifact show."""
        last = self.last
        if last.alarm:
            return "ALARM"
        if last.moved:
            return "learning: moved"
        return "watch" if beyond_noise(last.evidence, self.threshold) else "ok"

    @property
    def state(self) -> str:
        """``status``, and the last alarm not acknowledged when it is an earlier night's:
        ``ok (alarm on b7)``."""
        earlier = self.last_alarm if not self.last.alarm else None
        return f"{self.status} (alarm on {earlier})" if earlier else self.status

    def describe(self) -> str:
        """What changed, by how much, since when: the alarm's sentence."""
        last = self.judged_night
        change = "" if self.by is None else f" by {_signed(self.by, self.metric)}"
        when = ""
        if self.since:
            nights = [n.experiment for n in self.nights if n.judged]
            run = nights[nights.index(self.since) :] if self.since in nights else [self.since]
            when = f" at {run[0]}" if len(run) == 1 else f" over {_span(run)}"
        against = f", against {_span(self.reference)}" if self.reference else ""
        p = "" if last.p is None else f" (z = {last.z:.2f}, one-sided p = {last.p:.2g})"
        flips = f"; {len(self.flipped)} case(s) flipped" if self.flipped else ""
        return (
            f"{self.metric} of {self.label} changed{change}{when}{against}{p}: evidence "
            f"{' ≥ '.join(evidence_figures(last.evidence, self.threshold))}{flips}"
        )


@dataclass(frozen=True)
class SeriesWatch:
    series: str
    points: tuple[SeriesPoint, ...]
    events: tuple[SeriesEvent, ...]
    streams: tuple[StreamVerdict, ...]
    settings: WatchSettings
    threshold: float
    notes: tuple[str, ...] = field(default=())
    shared: str = ""
    """The settings every config shares, left out of their labels (``shown_labels``)."""

    @property
    def alarms(self) -> tuple[StreamVerdict, ...]:
        """The alarms the series' last judged run (completed, not partial) raised itself:
        a run still running, cut short or partial after it is not judged and hides none
        of them; an earlier run's alarm is not one of them."""
        judged = self.judged
        if judged is None:
            return ()
        return tuple(
            s
            for s in self.streams
            if s.judged_night.alarm and s.judged_night.experiment == judged.experiment
        )

    @property
    def subset(self) -> tuple[str, ...]:
        """The calibrated cases the series is watched on (empty: every case run), those of
        its last completed run when that was a calibrated night."""
        judged = self.judged
        if judged is None or judged.watched not in ("calibrated", "escalated"):
            return ()
        return judged.calibrated_cases

    def beyond_noise(self, share: float = ESCALATE_SHARE) -> tuple[StreamVerdict, ...]:
        """The quality streams whose last judged night moved beyond noise: an alarm, the
        CUSUM's evidence at ``share`` of its threshold or more, or a learning night that
        moved. On a calibrated night these send the nightly run to the full suite."""
        judged = self.judged
        if judged is None:
            return ()
        return tuple(
            s
            for s in self.streams
            if s.metric not in OPERATIONAL
            and s.last.experiment == judged.experiment
            and beyond_noise(s.last.evidence, s.threshold, s.last.alarm, s.last.moved, share)
        )

    @property
    def judged(self) -> SeriesPoint | None:
        """The series' last completed run that is not partial on every stream (a smoke
        level's few cases): the last one the watch judged."""
        nights = [n for s in self.streams for n in s.nights]
        partial = {n.experiment for n in nights} - {n.experiment for n in nights if not n.partial}
        done = [p for p in self.points if p.status == "completed" and p.experiment not in partial]
        return done[-1] if done else None

    @property
    def unjudged_after(self) -> str:
        """The run after the last judged one, when there is one, as not judged: its name
        and why (``b7 partial run: not judged``, ``b8 interrupted: not judged``); empty
        when the last run is judged."""
        last, judged = self.last, self.judged
        if judged is not None and judged.experiment == last.experiment:
            return ""
        if last.status == "completed":
            return f"{last.experiment} {PARTIAL_RUN}"
        return f"{last.experiment} {last.status}: not judged"

    @property
    def last(self) -> SeriesPoint:
        return self.points[-1]


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
    points, shared = shown_labels([point_of(session, e) for e in experiments])
    events = series_events(points)
    notes: list[str] = []
    done = [i for i, p in enumerate(points) if p.status == "completed"]
    if len(done) < len(points):
        notes.append(f"{len(points) - len(done)} run(s) not completed: shown, not judged")
    configs, stale = _watched_configs(points, done)
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
        present = [i for i in done if config in points[i].configs]
        segment = [points[i] for i in _segment(points, present, config, events)]
        accepted = [j for j, p in enumerate(segment) if p.accepted_baseline]
        for metric, higher in _metrics(segment):
            per_night = [frames.per_case(p.experiment, config, metric) for p in segment]
            ran = [int(s.notna().sum()) for s in per_night]
            if subset:
                per_night = [s[s.index.isin(subset)] for s in per_night]
            if any(s.notna().any() for s in per_night):  # measured at all
                inputs.append((segment, config, metric, higher, per_night, accepted, ran))
    settings.refuse_no_threshold(len(inputs))
    h = settings.threshold(len(inputs))
    verdicts = []
    plain: dict[tuple[str, str], list[str]] = {}  # (metric, why) -> the configs' labels
    after_accepted: dict[tuple[str, str, str], list[str]] = {}  # alarms after the accepted
    for segment, config, metric, higher, per_night, accepted, ran in inputs:
        weights = None
        if subset and metric not in OPERATIONAL:
            weights, why = _weights(banks, segment, config, metric, per_night)
            if why:
                plain.setdefault((metric, why), []).append(segment[-1].configs.get(config, config))
        verdict = _stream(
            segment, config, metric, higher, per_night, settings, len(inputs), weights
        )
        if accepted:
            verdict, note = _from_accepted(
                verdict,
                accepted[-1],
                segment,
                config,
                metric,
                higher,
                per_night,
                settings,
                len(inputs),
                weights,
            )
            if note:
                after_accepted.setdefault(note, []).append(f"{metric} of {verdict.label}")
        if weights is not None and banks is not None:  # the nights the verdict kept
            n = len(verdict.nights)
            verdict = _estimated(
                verdict, banks, segment[-n:], config, metric, per_night[-n:], weights, ran[-n:]
            )
        elif subset and metric not in OPERATIONAL:
            n = len(verdict.nights)
            verdict = _subset_mean(
                verdict, len(subset), segment[-1].suite_cases, per_night[-n:], ran[-n:]
            )
        if subset:
            verdict = replace(verdict, cases=f"{len(subset)} of {segment[-1].suite_cases} cases")
        verdicts.append(verdict)
    alarmed = {n.experiment for s in verdicts for n in s.nights if n.alarm}
    partial = {(s.config, n.experiment) for s in verdicts for n in s.nights if n.partial}
    notes[greedy_at:greedy_at] = greedy_changes(
        session, points, done, configs, frames.generations, alarmed, partial
    )
    notes += [f"{metric} of {', '.join(labels)}: {why}" for (metric, why), labels in plain.items()]
    notes += [_alarm_stands(*key, streams) for key, streams in after_accepted.items()]
    return SeriesWatch(
        series, tuple(points), tuple(events), tuple(verdicts), settings, h, tuple(notes), shared
    )


def _subset(points: Sequence[SeriesPoint], done: list[int]) -> tuple[str, ...]:
    """The calibrated cases of the last completed run, when it was a calibrated night."""
    if not done or points[done[-1]].watched not in ("calibrated", "escalated"):
        return ()
    return points[done[-1]].calibrated_cases


def _weights(
    banks: SubsetEstimates | None,
    segment: Sequence[SeriesPoint],
    config: str,
    metric: str,
    per_night: Sequence[pd.Series],
) -> tuple[pd.Series | None, str]:
    """Each calibrated case's weight in the full-suite estimate, at the config's level
    over the nights before the last (the last alone on a first night)."""
    if banks is None:
        return None, "no item bank asked for: judged on the calibrated cases' plain mean"
    before = [s for s in per_night[:-1] if s.notna().any()] or [per_night[-1]]
    reference = pd.concat(before).groupby(level=0).mean().dropna()
    if reference.empty:
        return None, ""
    weights, why = banks.weights(segment[-1], config, metric, reference)
    if weights is None:
        return None, f"{why}: judged on the calibrated cases' plain mean"
    return weights, ""


def _estimated(
    verdict: StreamVerdict,
    banks: SubsetEstimates,
    segment: Sequence[SeriesPoint],
    config: str,
    metric: str,
    per_night: Sequence[pd.Series],
    weights: pd.Series,
    ran: Sequence[int],
) -> StreamVerdict:
    """A calibrated night's value shown as the bank's full-suite estimate: the last
    night's with its interval; earlier ones moved from it by the weighted change of
    their cases (the estimate's linear part, the units the night was judged in). A
    night on which the config ran every case (``ran``: its cases; escalated, or before
    the series was calibrated) shows its measured score."""
    last = per_night[-1].dropna()
    if last.empty:
        return verdict
    mean, low, high, text = banks.estimate(segment[-1], config, metric, last)
    nights = list(verdict.nights)
    estimated = [
        p.watched in ("calibrated", "escalated") and n < p.suite_cases
        for p, n in zip(segment, ran, strict=True)
    ]
    for t in range(len(segment)):
        if not estimated[t]:
            continue
        if t == len(segment) - 1:
            nights[t] = replace(nights[t], value=mean, low=low, high=high)
            continue
        shared = per_night[t].dropna().index.intersection(last.index)
        moved = float((weights.reindex(shared) * (per_night[t][shared] - last[shared])).sum())
        nights[t] = replace(nights[t], value=mean + moved, low=None, high=None)
    return replace(verdict, nights=tuple(nights), estimated=text if estimated[-1] else "")


def _subset_mean(
    verdict: StreamVerdict,
    cases: int,
    total: int,
    per_night: Sequence[pd.Series],
    ran: Sequence[int],
) -> StreamVerdict:
    """A quality stream judged on the calibrated cases' plain mean (no usable bank):
    a night that ran more cases (a full one) shown on the same cases (what it was judged
    on), not its whole mean among the others' few-case means; the last value labelled
    inline, as an estimate's is, not only in a note."""
    nights = list(verdict.nights)
    for t, (scores, count) in enumerate(zip(per_night, ran, strict=True)):
        if count > cases and scores.notna().any():
            nights[t] = replace(nights[t], value=float(scores.mean()), low=None, high=None)
    verdict = replace(verdict, nights=tuple(nights))
    last = verdict.last
    if last.value is None or cases >= total:
        return verdict
    interval = (
        f" [{last.low:.3f}, {last.high:.3f}]"
        if last.low is not None and last.high is not None
        else ""
    )
    return replace(
        verdict,
        estimated=f"{last.value:.3f}{interval} subset mean from {cases} of {total} cases",
    )


def _watched_configs(points: Sequence[SeriesPoint], done: list[int]) -> tuple[list[str], list[str]]:
    """The configs of the last completed run (those the spec runs now), and the labels of
    the others an earlier run had (a config dropped from the spec, or the old text of a
    template changed under its name: told apart by their hash). Only the first are
    watched and counted in the series' false-alarm budget."""
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
        if c not in current
    ]
    return list(current), stale


def _segment(
    points: Sequence[SeriesPoint], present: list[int], config: str, events: Sequence[SeriesEvent]
) -> list[int]:
    """The completed points of ``config`` since the last event that touches it (a suite
    change, or a change of its model); the accepted baseline is applied per stream
    (``_from_accepted``)."""
    model = next(points[i].config_models.get(config, "") for i in present) if present else ""
    start = 0
    index = {p.experiment: i for i, p in enumerate(points)}
    for event in events:
        if not event.model or event.model == model or _bare(event.model) == _bare(model):
            start = max(start, index[event.experiment])
    return [i for i in present if i >= start]


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
            segment[at:], config, metric, higher, per_night[at:], settings, streams, weights
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


def _bare(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


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


class _Frames:
    """Each experiment's scores and generations, read once, and its per-case values of
    every stream grouped once (filtering the whole frame per config and metric was most
    of the watch's time: 480 filters on 30 nights of 4 configs)."""

    def __init__(self, session: Session, experiments: Sequence) -> None:
        self._session = session
        self._ids = {e.name: e.id for e in experiments}
        self._scores: dict[str, pd.DataFrame] = {}
        self._generations: dict[str, pd.DataFrame] = {}
        self._streams: dict[str, dict[tuple[str, str], pd.Series]] = {}

    def scores(self, name: str) -> pd.DataFrame:
        if name not in self._scores:
            self._scores[name] = scores_frame(self._session, self._ids[name])
        return self._scores[name]

    def generations(self, name: str) -> pd.DataFrame:
        if name not in self._generations:
            self._generations[name] = generations_frame(self._session, self._ids[name])
        return self._generations[name]

    def per_case(self, name: str, config: str, metric: str) -> pd.Series:
        """Per case id: the night's value of ``metric`` for ``config`` (samples averaged;
        empty where it has none)."""
        if name not in self._streams:
            self._streams[name] = self._grouped(name)
        found = self._streams[name].get((config, metric))
        return found if found is not None else pd.Series(dtype=float)

    def _grouped(self, name: str) -> dict[tuple[str, str], pd.Series]:
        """Every (config, metric) of the night: its per-case means, the quality metrics
        from the scores, ``OPERATIONAL`` from the generations (failure: the share not
        ok; latency, log tokens/s: of those ok)."""
        s, g = self.scores(name), self.generations(name)
        ok = g[g["status"] == "ok"]
        tokens = pd.to_numeric(ok["tokens_per_s"], errors="coerce")
        means = {
            metric: values.groupby([frame[config], frame["case_id"]]).mean()
            for metric, values, frame, config in (
                ("failure_rate", (g["status"] != "ok").astype(float), g, "config_hash"),
                ("latency_p95", pd.to_numeric(ok["latency_s"], errors="coerce"), ok, "config_hash"),
                ("tokens_per_s", np.log(tokens.where(tokens > 0)), ok, "config_hash"),
            )
        }
        out = {
            (config, metric): part.droplevel(0)
            for metric, grouped in means.items()
            for config, part in grouped.groupby(level=0)
        }
        quality = pd.to_numeric(s["value"], errors="coerce")
        grouped = quality.groupby([s["config"], s["metric"], s["case_id"]]).mean()
        for (config, metric), part in grouped.groupby(level=[0, 1]):
            out[(config, metric)] = part.droplevel([0, 1])
        return out


def _stream(
    points: Sequence[SeriesPoint],
    config: str,
    metric: str,
    higher: bool,
    per_night: Sequence[pd.Series],
    settings: WatchSettings,
    streams: int,
    weights: pd.Series | None = None,
) -> StreamVerdict:
    """One stream's verdict. ``weights`` (per case): the night's change is judged as
    the change of ``Σ weights · scores`` (the item bank's full-suite estimate, to its
    linear part) rather than of the cases' mean."""
    k = settings.allowance(metric)
    h = settings.threshold(streams, k)
    cases = sorted(set().union(*(s.index for s in per_night)))
    grid = np.array([s.reindex(cases).to_numpy(dtype=float) for s in per_night])[None]
    judged_on = grid
    if weights is not None:  # mean over cases of n·w·x = Σ w·x
        scale = weights.reindex(cases).to_numpy(dtype=float) * len(cases)
        judged_on = grid * np.where(np.isfinite(scale), scale, np.nan)
    counts = np.sum(np.isfinite(grid[0]), axis=-1)
    partial = counts < PARTIAL_SHARE * counts.max()  # a smoke-level night among full ones
    measured = grid[0].copy()  # a partial night's own figure is still shown
    grid[0, partial] = np.nan  # not compared with full nights, nor a reference for them
    judged_on[0, partial] = np.nan

    def z_of(excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if metric == "latency_p95":
            return p95_stream_z(
                grid,
                window=settings.window,
                learning=settings.learning,
                floor=LATENCY_FLOOR,
                excluded=excluded,
            )
        return mean_stream_z(
            judged_on,
            higher_is_better=higher,
            window=settings.window,
            learning=settings.learning,
            excluded=excluded,
        )

    theta, var, z, path, alarms = watch_stream(z_of, grid.shape[:-1], k, h)
    theta, var, z, path, alarms = theta[0], var[0], z[0], path[0], alarms[0]
    sign = -1.0 if higher else 1.0  # theta is in the worse direction
    nights = []
    shown = [_shown(point, config, metric, measured[t]) for t, point in enumerate(points)]
    drawn = [v for v, _, _ in shown] if weights is not None else _drawn(metric, measured, shown)
    for t, point in enumerate(points):
        value, low, high = shown[t]
        judged = bool(np.isfinite(z[t]))
        change = _change(metric, sign * theta[t]) if np.isfinite(theta[t]) else None
        bounds = (None, None)
        if change is not None and np.isfinite(var[t]):
            # The interval of the test behind z and p (day effects and the t's few
            # nights included): its 95% ends exclude no change just when the one-sided
            # p < 0.025. Unjudged nights show the within-night error only.
            se = abs(theta[t] / z[t]) if judged and z[t] != 0 else sqrt(var[t])
            half = 1.96 * se
            ends = sorted(_change(metric, sign * theta[t] + d) for d in (-half, half))
            bounds = (ends[0], ends[1])
        nights.append(
            Night(
                experiment=point.experiment,
                value=value,
                drawn=drawn[t],
                low=low,
                high=high,
                change=change,
                change_low=bounds[0],
                change_high=bounds[1],
                z=float(z[t]) if judged else None,
                p=0.5 * erfc(float(z[t]) / sqrt(2)) if judged else None,
                evidence=float(path[t]),
                alarm=bool(alarms[t]),
                judged=judged,
                partial=bool(partial[t]),
                scored=bool(counts[t] > 0),
                moved=not judged
                and bounds[0] is not None
                and bounds[1] is not None
                and (bounds[0] > 0 or bounds[1] < 0),
            )
        )
    # the evidence and the flipped cases of the last night judged, not of a partial one
    j = max((t for t in range(len(points)) if not partial[t]), default=len(points) - 1)
    since, by = _run(points[: j + 1], path[: j + 1], alarms[: j + 1], theta[: j + 1], sign, metric)
    reference: tuple[str, ...] = ()
    if since is not None:
        start = next(i for i, p in enumerate(points) if p.experiment == since)
        full = [  # the nights it was compared with: no partial one, no alarmed one
            p.experiment
            for p, n in zip(points[:start], nights, strict=False)
            if not n.partial and not n.alarm
        ]
        reference = tuple(full[-settings.window :])
    flipped = (
        _flipped(grid[0, : j + 1], higher) if metric not in OPERATIONAL and nights[j].alarm else ()
    )
    return StreamVerdict(
        config=config,
        label=points[-1].configs.get(config, config),
        metric=metric,
        higher_is_better=higher,
        nights=tuple(nights),
        threshold=h,
        segment_start=points[0].experiment,
        since=since,
        by=by,
        flipped=tuple(cases[i] for i in flipped),
        reference=reference,
    )


def _shown(
    point: SeriesPoint, config: str, metric: str, per_case: np.ndarray
) -> tuple[float | None, float | None, float | None]:
    """The night's value: the stored mean and interval for a quality metric, else the
    operational figure (p95 seconds, failure share, geometric-mean tokens/s)."""
    stored = point.values.get(config, {}).get(metric)
    if stored is not None and stored.mean is not None:
        return stored.mean, stored.low, stored.high
    finite = per_case[np.isfinite(per_case)]
    return (_figure(metric, finite), None, None) if finite.size else (None, None, None)


def _drawn(
    metric: str, measured: np.ndarray, shown: Sequence[tuple[float | None, ...]]
) -> list[float | None]:
    """Per night, what the sparkline draws: its value where it ran the cases of the
    stream's fullest night (the latest with the most), else its level on those cases,
    read paired as its change is judged: its figure on the cases both ran, less the
    fullest night's there, plus the fullest night's on all its cases (a ratio for p95
    latency and tokens/s). A newcomer's greedy config scored 0.417 on 12 cases and 0.667
    on the first 6 of them, the same outputs: the sparkline jumped ▁ to █ beside a change
    of +0.000. A night sharing no case with it keeps its value."""
    held = np.isfinite(measured)
    counts = held.sum(axis=1)
    fullest = len(counts) - 1 - int(np.argmax(counts[::-1]))
    full = held[fullest]
    ratio = metric in ("latency_p95", "tokens_per_s")
    out: list[float | None] = []
    for t, (value, *_) in enumerate(shown):
        both = held[t] & full
        if value is None or (held[t] == full).all() or not both.any():
            out.append(value)
            continue
        mine, theirs = _figure(metric, measured[t, both]), _figure(metric, measured[fullest, both])
        level = _figure(metric, measured[fullest, full])
        out.append(level * mine / theirs if ratio and theirs else level + mine - theirs)
    return out


def _figure(metric: str, per_case: np.ndarray) -> float:
    """The night's figure on ``per_case`` values (its operational figure: ``_shown``)."""
    if metric == "latency_p95":
        return float(np.quantile(per_case, 0.95))
    if metric == "tokens_per_s":
        return float(exp(per_case.mean()))
    return float(per_case.mean())


def _change(metric: str, theta: float) -> float:
    """A change in the metric's own units: log ratios as ratios − 1."""
    return exp(theta) - 1 if metric in ("latency_p95", "tokens_per_s") else float(theta)


def evidence_figures(evidence: float, threshold: float) -> tuple[str, str]:
    """The CUSUM's evidence and its threshold printed alike, with the decimals that show
    the threshold's first two significant digits, at least 2: a p95 latency's threshold
    at a high false-alarm rate is 0.00021, which 2 decimals printed as 0.00."""
    decimals = 2 if not 0 < threshold < 0.1 else 1 - floor(log10(threshold))
    return f"{evidence:.{decimals}f}", f"{threshold:.{decimals}f}"


def _span(names: Sequence[str]) -> str:
    """``a…b (n nights)``, or the one night's name."""
    if len(names) == 1:
        return f"{names[0]} (1 night)"
    return f"{names[0]}…{names[-1]} ({len(names)} nights)"


def _signed(value: float, metric: str) -> str:
    if metric in ("latency_p95", "tokens_per_s"):
        return f"{value:+.0%}"
    return f"{value:+.3g}"


def _run(
    points: Sequence[SeriesPoint],
    path: np.ndarray,
    alarms: np.ndarray,
    theta: np.ndarray,
    sign: float,
    metric: str,
) -> tuple[str | None, float | None]:
    """The first night of the evidence behind the last night (the CUSUM's current run,
    or the run that ended in tonight's alarm) and the mean change over it."""
    last = len(path) - 1
    if path[last] <= 0:
        return None, None
    start = last
    while start > 0 and path[start - 1] > 0 and not alarms[start - 1]:
        start -= 1
    run = theta[start : last + 1]
    run = run[np.isfinite(run)]
    by = _change(metric, sign * float(run.mean())) if run.size else None
    return points[start].experiment, by


def _flipped(grid: np.ndarray, higher: bool, limit: int = 20) -> list[int]:
    """Cases right (≥ 0.5) in every earlier night's mean and wrong tonight (the other way
    round where lower is better), at most ``limit``."""
    if grid.shape[0] < 2:
        return []
    with np.errstate(all="ignore"):
        before = np.nanmean(grid[:-1], axis=0)
    tonight = grid[-1]
    good_then = before >= 0.5 if higher else before < 0.5
    bad_now = tonight < 0.5 if higher else tonight >= 0.5
    return [int(i) for i in np.flatnonzero(good_then & bad_now & np.isfinite(tonight))[:limit]]
