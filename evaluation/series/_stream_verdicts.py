"""What the watch found over a stored series (``_trends``): each stream's verdict
(``StreamVerdict``), night by night (``Night``), and the series' (``SeriesWatch``), with
the words and figures they say themselves in (``describe``, ``evidence_figures``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from math import floor, log10

from evaluation.series._events import SeriesEvent
from evaluation.series._series import SeriesPoint
from evaluation.series._watch import ESCALATE_SHARE, WatchSettings, beyond_noise
from evaluation.wording import PARTIAL_RUN

OPERATIONAL = ("failure_rate", "latency_p95", "tokens_per_s")


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
    the reference the later nights are judged against. The first night after a model's
    event is judged against the runs before the event (``_across``), and moved only where
    those had not learned enough to judge it."""
    too_few: str = ""
    """Why the night can never be judged on this stream however many runs come, where
    that is so: a p95 latency of fewer than ``LATENCY_MIN_N`` latencies ("fewer than 10
    latencies (6)"): said instead of a learning countdown that never ends."""
    judged_on: str = ""
    """Where the night was judged by a later run: a new model's first run, across its
    event, where the runs before had not learned the series' noise, judged by the run
    that first judged the new model's stream, with the spread learned by then
    (``_across``); its alarm is that run's."""
    load: str = ""
    """A speed stream's alarm the machine's load explains, set down (``alarm`` False):
    why ("machine load 12.3 vs 1.1 in the reference nights, on 2 CPUs …";
    ``_machine_load``). Its evidence restarts and it leaves the reference all the same."""


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
    relabelled: str = ""  # where its config changed, judged across: "nc-r7", "r5 (n=32 -> n=3)"
    accepted: str | None = None  # the last accepted run among its nights
    restarted: str = ""  # why its comparison starts afresh at ``segment_start``, an accepted run
    accepts: tuple[tuple[str, str], ...] = ()
    """Every accepted run of its segment, in the series' order, with what its accept did:
    why the stream restarted there, "" where it confirmed the level."""
    carried: int = 0
    """The night-to-night changes of the runs before its model's event that teach its
    spread (``_stream``'s ``prior``): it learns from that many fewer of its own runs."""
    across: StreamVerdict | None = None
    """Where its judged night is the first after a model's event (its segment's first),
    judged against the runs before it: the previous segment's stream with that night
    (``_across``), whose nights its alarm's words name."""

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
    def alarm_night(self) -> Night | None:
        """The night whose alarm its judged night raised: that night, or a new model's
        first run judged on it (``Night.judged_on``); None where it raised none."""
        judged = self.judged_night
        if judged.alarm:
            return judged
        late = (n for n in self.nights if n.alarm and n.judged_on == judged.experiment)
        return next(late, None)

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
        suite); ``up`` on a judged night of a quality metric whose change's interval lies
        wholly above 0 (it improved: said, never alarmed on, the watch being one-sided;
        the newcomer's F10: a prompt edit's +0.500 [+0.205, +0.795] read "ok"); ``down``
        where it lies wholly below 0 though the evidence stays under half the threshold
        (M3: -0.212 [-0.418, -0.005], one-sided p 0.022, read "ok" beside the symmetric
        "up"; informational too: the watch's evidence decides an alarm); else ``ok``.
        The one label that ``evalflow trends``, the monitor's series page and the
        nightly's artifact show."""
        last = self.last
        if last.alarm:
            return "ALARM"
        if last.moved:
            return "learning: moved"
        if beyond_noise(last.evidence, self.threshold):
            return "watch"
        return self.direction_word(last)

    def direction_word(self, night: Night) -> str:
        """``up``, ``down`` or ``ok``: where a judged night's change lies on a quality
        metric (``rose``, ``fell``), before the watch's evidence is looked at."""
        return "up" if self.rose(night) else "down" if self.fell(night) else "ok"

    def rose(self, night: Night) -> bool:
        """Whether ``night``, judged, rose beyond its noise on a quality metric: its
        change's 95% interval lies wholly above 0 ("up" in trends and on the page)."""
        return (
            night.p is not None
            and self.metric not in OPERATIONAL
            and self.higher_is_better
            and night.change_low is not None
            and night.change_low > 0
        )

    def fell(self, night: Night) -> bool:
        """Whether ``night``, judged, fell beyond its noise on a quality metric: its
        change's 95% interval lies wholly below 0 ("down")."""
        return (
            night.p is not None
            and self.metric not in OPERATIONAL
            and self.higher_is_better
            and night.change_high is not None
            and night.change_high < 0
        )

    @property
    def state(self) -> str:
        """``status``, and the last alarm not acknowledged when it is an earlier night's:
        ``ok (alarm on b7)``; on a speed alarm the machine's load explains, why it was set
        down: ``watch (machine load 12.3 vs 1.1 …: its alarm set down)``."""
        return self.stated(self.status)

    def stated(self, status: str, also: str = "") -> str:
        """``status`` (``status``, or what stands for an "ok" of a night not judged:
        ``partial run: not judged``) with what ``state`` adds to it, after ``also``
        (``partial run: not judged (watch; alarm on b7)``)."""
        if self.last.load:
            return f"{status} ({self.last.load}: its alarm set down)"
        earlier = self.last_alarm if not self.last.alarm else None
        said = [w for w in (also, f"alarm on {earlier}" if earlier else "") if w]
        return f"{status} ({'; '.join(said)})" if said else status

    def describe(self) -> str:
        """What changed, by how much, since when: the alarm's sentence."""
        last = self.alarm_night or self.judged_night
        change = "" if self.by is None else f" by {_signed(self.by, self.metric)}"
        when = ""
        if self.since:
            nights = [n.experiment for n in (self.across or self).nights if n.judged]
            run = nights[nights.index(self.since) :] if self.since in nights else [self.since]
            when = f" at {run[0]}" if len(run) == 1 else f" over {_span(run)}"
            when += ", across its model's event" if self.across is not None else ""
            if last.judged_on:
                when += f" (judged on {last.judged_on}, once the watch had learned the noise)"
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
    n_key: str = ""
    """What "n=" in the labels is, where they show it (``shown_labels``)."""
    left_out: tuple[str, ...] = ()
    """The metrics ``without`` left out (``trends --skip``)."""
    hidden: int = 0
    """How many streams they were: still watched (``threshold`` is set for them too)."""

    def without(self, skip: Sequence[str]) -> SeriesWatch:
        """This watch with the streams of the metrics in ``skip`` left out of what it
        shows and of its ``alarms`` (``trends --skip``, as the gate's; checked first by
        ``check_trends_skip``): the streams left keep their verdicts, those of the whole
        series' watch (the monitor's, the nightly's: one verdict per series), whose
        threshold is set for every stream."""
        if not skip:
            return self
        kept = tuple(s for s in self.streams if s.metric not in skip)
        left = tuple(dict.fromkeys(s.metric for s in self.streams if s.metric in skip))
        return replace(self, streams=kept, left_out=left, hidden=len(self.streams) - len(kept))

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
            if s.alarm_night is not None and s.judged_night.experiment == judged.experiment
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

    @property
    def baseline(self) -> str | None:
        """The series' accepted baseline (`evalflow baseline accept`), if it has one."""
        accepted = [p.experiment for p in self.points if p.accepted_baseline]
        return accepted[-1] if accepted else None


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
