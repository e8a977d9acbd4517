"""The watch and the gate as text: the terminal's trends (sparklines), the nightly
artifact's Markdown, the gate's JUnit XML and Markdown summary."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from evaluation.compare._leaderboard import SIMULATED_BANNER
from evaluation.series._accepted import BACK
from evaluation.series._stream_verdicts import Night, SeriesWatch, StreamVerdict, evidence_figures
from evaluation.view.links import view_url
from evaluation.wording import counted, not_judged_why

if TYPE_CHECKING:  # the gate's module loads scipy.stats: the nightly flow renders without it
    from evaluation.series._gate import FailedRequests, GateCase, GateResult

BARS = "▁▂▃▄▅▆▇█"


PARTIAL = "·"
MIN_RANGE = 0.05  # a sparkline's range spans at least ± this share of its mean


def sparkline(values: list[float | None], partial: list[bool] | None = None) -> str:
    """One character per night, scaled between the smallest and largest value of the
    full nights, that range widened to at least ±5% of their mean (as the monitor's
    charts: a 1% wobble, or float noise on identical nights, is not drawn as a cliff);
    a space where there is none, ``·`` on a partial night (fewer cases: a smoke or
    subset level, whose mean would read as a dip)."""
    partial = partial or [False] * len(values)
    finite = [
        v
        for v, cut in zip(values, partial, strict=True)
        if v is not None and math.isfinite(v) and not cut
    ]
    if not finite:
        return "".join(PARTIAL if cut else " " for cut in partial)
    low, high = min(finite), max(finite)
    floor = abs(sum(finite) / len(finite)) * 2 * MIN_RANGE
    if high - low < floor:  # centred in the widened range
        low = (low + high - floor) / 2
    span = max(high - low, floor)
    out = []
    for v, cut in zip(values, partial, strict=True):
        if cut:
            out.append(PARTIAL)
        elif v is None or not math.isfinite(v):
            out.append(" ")
        else:
            # to 6 decimals first: a centred flat line sits on a bar boundary (3.5 of 7),
            # where float noise would split equal nights over two bars
            at = 0.0 if span == 0 else round((v - low) / span * (len(BARS) - 1), 6)
            out.append(BARS[round(at)])
    return "".join(out)


def runs(n: int) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} run" if n == 1 else f"{n} runs"


def baseline_words(baseline: str | None) -> str:
    """``, baseline RUN`` after a series' last run where it has an accepted baseline:
    `series`, `trends` and the monitor's series page name it alike (only `series` did)."""
    return f", baseline {baseline}" if baseline else ""


def since_words(s: StreamVerdict) -> str:
    """Where the stream's comparison starts, ``since RUN, N runs``, with ``: its level
    accepted there`` where it starts afresh at the accepted baseline: `trends` and the
    monitor's series page say it alike (the page said "since ns-n6" alone)."""
    taken = ": its level accepted there" if s.restarted else ""  # at ``segment_start``
    return f"since {s.segment_start}, {runs(len(s.nights))}{taken}"


def runs_of(statuses: Sequence[str]) -> str:
    """A series' runs counted by status where not all completed: ``3 runs (2
    completed, 1 running)``, else ``3 runs``. `evalflow series`, `trends` and the
    monitor's series page say it alike: `series` said "3 runs" of a series whose page
    said 2 while one ran."""
    counts: dict[str, int] = {"completed": 0}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    if counts["completed"] == len(statuses):
        return runs(len(statuses))
    said = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f"{runs(len(statuses))} ({said})"


def _value(v: float | None, metric: str) -> str:
    if v is None:
        return "–"
    if metric == "latency_p95":
        return f"{v:.3g} s"
    if metric == "tokens_per_s":
        return f"{v:.3g}/s"
    return f"{v:.3f}"


def _change(v: float | None, metric: str) -> str:
    """Ratios in whole percent, others to three decimals; a rounded zero as ``+0%``,
    never ``-0%`` (its sign is float noise)."""
    if v is None:
        return "–"
    text = f"{v:+.0%}" if metric in ("latency_p95", "tokens_per_s") else f"{v:+.3f}"
    return text.replace("-", "+") if not text.strip("+-0.%") else text  # no "-0%"


def figure(v: float | None, metric: str, *, change: bool = False) -> str:
    """A value (``change``: a change) as ``evalflow trends`` prints it, with its unit:
    ``19.9 s``, ``7.49/s``, ``0.639``; a ratio's change as a percentage (``+216%``).
    The monitor's series page prints its figures with it."""
    return _change(v, metric) if change else _value(v, metric)


def _change_interval(night: Night, metric: str) -> str:
    """``+0.042 [-0.052, +0.137]``: the change with its 95% interval where known."""
    change = _change(night.change, metric)
    if night.change_low is not None and night.change_high is not None:
        low, high = _change(night.change_low, metric), _change(night.change_high, metric)
        change += f" [{low}, {high}]"
    return change


def stream_state(s: StreamVerdict, learning: int) -> str:
    """The stream's state as `evalflow trends`, the monitor's series page and the nightly's
    artifact say it: ``StreamVerdict.state``, but where that is "ok" of a last night not
    judged, why not (a partial run; learning, with how many more full runs): the page's
    heading said "ok" over trends' "learning (p after 3 more full runs)". A
    learning night that moved is ``learning: moved``: how far is its change, shown beside
    it on each (the newcomer's F6, stop 71: trends' line said the interval twice). An
    earlier alarm not acknowledged follows either: ``partial run: not judged (alarm on
    b7)`` (newcomers' ncwatch-2: the heading said "ok (alarm on b7)" of a smoke night),
    and so does the evidence of the night judged before it at half h or more: ``partial
    run: not judged (watch)`` (recheck-3: the heading said "watch" alone)."""
    if not _unjudged_quiet(s):
        return s.state
    return s.stated(_unjudged(s, learning), also="" if s.status == "ok" else s.status)


def _unjudged_quiet(s: StreamVerdict) -> bool:
    """The stream's last night has no p and nothing to say of it beyond "ok", or beyond
    "watch" of the evidence before it."""
    return s.last.p is None and s.status in ("ok", "watch")


def _unjudged(s: StreamVerdict, learning: int) -> str:
    """Why the stream's last night has no p: not scored, a partial run, or the watch
    still learns."""
    if why := not_judged_why(s.last.scored, s.last.partial, s.last.too_few):
        return why
    return "learning" if s.last.judged else _learning(s, learning)


def _runs_to_learn(s: StreamVerdict, learning: int) -> int:
    """How many more full runs the watch learns from before it judges one (0: it judges
    the next): the segment's first full run is the reference, the next ``learning`` teach
    the watch, and the one after is judged (the newcomer's F9: counting the judged run
    too, "3 more" came out where the 3rd more run was judged). A new model's stream
    learns from the changes of the runs before its event too (``carried``)."""
    start = next((i for i, n in enumerate(s.nights) if n.experiment == s.segment_start), 0)
    full = sum(not n.partial for n in s.nights[start:])
    return max(learning + 1 - full - s.carried, 0)


def _learning(s: StreamVerdict, learning: int) -> str:
    """``learning (p after 3 more full runs)``, ``learning (p on the next full run)``:
    when the stream's first p comes (its line at 160 columns was 166 wide, "learning (3
    more full runs before judging)", and wrapped where the judged lines did not)."""
    return f"learning ({_first_p(s, learning)})"


def _first_p(s: StreamVerdict, learning: int) -> str:
    left = _runs_to_learn(s, learning)
    return f"p after {counted(left, 'more full run')}" if left else "p on the next full run"


def _stream_line(
    s: StreamVerdict, learning: int, width: int = 30, columns: int | None = None
) -> str:
    """The stream's line; wider than ``columns`` (None: never), its change, p, evidence
    and state on a second line (at 80 columns a line was 130 wide, broken anywhere), its
    value still in the value column where that fits (newcomer F12: at 160 columns the
    wrapped lines' values sat beside their sparklines, out of line with the others')."""
    last = s.last
    shown = [n.drawn for n in s.nights][-width:]
    cut = [n.partial and n.scored for n in s.nights][-width:]  # unscored: no value, a gap
    interval = (
        f" [{_value(last.low, s.metric)}, {_value(last.high, s.metric)}]"
        if last.low is not None and last.high is not None
        else ""
    )
    change = _change_interval(last, s.metric)
    judged = f"one-sided p {last.p:.2g}" if last.p is not None else _unjudged(s, learning)
    if last.moved and judged == _learning(s, learning):  # the state says `learning: moved`
        judged = _first_p(s, learning)
    line = sparkline(shown, cut)
    # an unjudged night is not "ok": its judged column says why (a moved one still says so)
    if _unjudged_quiet(s):
        judged, state = stream_state(s, learning), ""
    else:
        state = f"  {s.state}"
    value = s.estimated or f"{_value(last.value, s.metric)}{interval}"
    evidence = "/".join(evidence_figures(last.evidence, s.threshold))
    tail = f"change {change}  {judged}  evidence {evidence}{state}"
    first = f"  {s.metric:<14} {line:<{width}} {value}"
    if columns is None or len(first) + 2 + len(tail) <= columns:
        return f"{first}  {tail}"
    if len(first) > columns:
        first = f"  {s.metric:<14} {line} {value}"
    return f"{first}\n    {tail}"


def trends_text(watch: SeriesWatch, columns: int | None = None) -> str:
    """``evalflow trends``: per config, a sparkline per metric, the last value with its
    interval, the change against the earlier nights with its p and the CUSUM's
    evidence; then the events and the alarms (what, by how much, since when, which
    cases, where to look). A stream's line wider than ``columns`` goes on two lines
    (the CLI wraps the rest at spaces). With no stream to watch (no run completed yet),
    only the series' line and why nothing was judged."""
    s = watch.settings
    last = watch.last
    simulated = " [SIMULATED]" if any(p.simulated for p in watch.points) else ""
    h = evidence_figures(0, watch.threshold)[1]
    lines = [
        f"series {watch.series}{simulated}: {runs_of([p.status for p in watch.points])}, "
        f"last {last.experiment} "
        f"({last.status}, started {last.time:%Y-%m-%d %H:%M} UTC){baseline_words(watch.baseline)}",
    ]
    if not watch.streams:  # no completed run yet: nothing is watched (newcomer N12)
        return "\n".join([*lines, *alarm_lines(watch)])
    watched = len(watch.streams) + watch.hidden
    lines.append(
        f"watch: {watched} streams, {s.false_alarms_per_100_nights:g} false alarms "
        f"per 100 nights in all (long-run; CUSUM k = {s.k:g}, h = {h}, set for "
        # a rescore's metrics moved every h without a word (newcomer N16)
        f"{watched} streams: more streams, a higher h; docs/trends.md)"
    )
    if watch.left_out:
        lines.append(
            f"left out (--skip): {', '.join(watch.left_out)} ({counted(watch.hidden, 'stream')}"
            ": still watched, as on the monitor's page; not shown, and no alarm of theirs "
            "fails --fail-on-alarm)"
        )
    lines += [said] if (said := _settings_said(watch.shared, watch.n_key, "every config: ")) else []
    by_config: dict[str, list[StreamVerdict]] = {}
    for stream in watch.streams:
        by_config.setdefault(stream.config, []).append(stream)
    for streams in by_config.values():
        first = max(streams, key=lambda st: len(st.nights))  # the longest segment
        changed = f"; its config changed at {first.relabelled}" if first.relabelled else ""
        lines += ["", f"{first.label}  ({since_words(first)}{changed})"]
        lines += [_stream_line(st, s.learning, columns=columns) for st in streams]
        # an accepted baseline restarts only the streams that alarmed before it
        lines += [
            f"  ({st.metric} {since_words(st)})"
            for st in streams
            if st.segment_start != first.segment_start
        ]
    if watch.events:
        lines += ["", "events (each says what the watch does across it):"]
        lines += [f"  {e.time:%Y-%m-%d} {e.message}" for e in watch.events]
    if watch.notes:
        lines += ["", *[f"note: {n}" for n in watch.notes]]
    lines += ["", *alarm_lines(watch)]
    return "\n".join(lines)


def alarm_lines(watch: SeriesWatch) -> list[str]:
    """One line per alarm of the last judged run, with the flipped cases and the view's
    link; a later run not completed, or partial, is named as not judged."""
    last, judged, after = watch.last, watch.judged, watch.unjudged_after
    if not watch.alarms:
        if judged is None:
            return [f"no alarm: {after}." if after else f"no alarm on {last.experiment}."]
        quiet = _learning_still(watch, judged.experiment) or f"no alarm on {judged.experiment}"
        return [f"{quiet}; {after}." if after else f"{quiet}."]
    run = judged.experiment if judged else last.experiment  # alarms come from a judged run
    lines = [f"ALARM on {run}{'; ' + after if after else ''}:"]
    for s in watch.alarms:
        lines.append(f"  {s.describe()}")
        if s.flipped:
            shown = ", ".join(s.flipped[:8]) + (" …" if len(s.flipped) > 8 else "")
            lines.append(f"    flipped: {shown}")
        # where `evalflow view RUN` serves the run's outputs (its default host and port)
        night = s.alarm_night or s.judged_night  # a new model's first run, judged late
        lines.append(
            f"    outputs: {view_url(night.experiment)} "
            f"(evalflow view {shlex.quote(night.experiment)})"
        )
    return lines


def _learning_still(watch: SeriesWatch, run: str) -> str:
    """Where no stream judged ``run`` (each still learning), what is left to learn: "no
    alarm" would claim a verdict the watch did not give; and how many moved beyond case
    noise (``learning: moved``), across an event where one came before ``run``."""
    nights = [
        (s, n) for s in watch.streams for n in s.nights if n.experiment == run and not n.too_few
    ]
    if not nights or any(n.p is not None for _, n in nights):
        return ""
    left = max(_runs_to_learn(s, watch.settings.learning) for s, _ in nights)
    said = f"nothing judged on {run} yet: {_left_to_learn(left)}"
    if moved := sum(n.moved for _, n in nights):  # a server upgrade's drop, say (M9)
        across = " across its event" if any(e.experiment == run for e in watch.events) else ""
        said += f"; {counted(moved, 'stream')} moved{across} beyond case noise: look at them"
    return said


def _left_to_learn(left: int) -> str:
    """How long the watch still learns before it judges (``_runs_to_learn``): the last
    line of a series nothing judged yet, and `baseline accept`'s of the streams it
    restarted."""
    if not left:
        return "the next full run is judged"
    return f"the watch learns the series' noise for {counted(left, 'more full run')}"


def accepted_lines(
    watch: SeriesWatch, accepted: str, before: SeriesWatch | None = None
) -> list[str]:
    """What accepting run ``accepted`` did to each stream, a line per kind: the streams
    whose level it confirmed (in line with their reference: they keep it, and their
    alarms up to it count as acknowledged), those whose comparison starts afresh there,
    by why (it alarmed, moved while learning, or its evidence was past half the
    threshold), and those it is not a night of (another config, or an event after it).
    Every accept of the series stays in effect, applied in the series' order: each
    stream's ``accepts`` says what this one did there. ``before``: the watch before it,
    where a later run was accepted before (an out-of-order accept): what the later
    accepts now do differently there (recheck R4: accepting night 6 after night 8 turned
    night 8's "confirmed" into "restarted, learning for 3 more runs", unsaid)."""
    did = {s: dict(s.accepts).get(accepted) for s in watch.streams}
    key = {s: (s.config, s.metric) for s in watch.streams}
    was = {(s.config, s.metric): s for s in before.streams} if before is not None else {}
    confirmed = [s for s, why in did.items() if why == ""]
    restarted: dict[str, list[str]] = {}
    for s, why in did.items():
        if why:
            restarted.setdefault(why, []).append(f"{s.metric} of {s.label}")
    lines = []
    if confirmed:
        lines.append(
            f"confirmed level: {counted(len(confirmed), 'stream')} (each keeps its reference; "
            f"its alarms up to {accepted} acknowledged)"
        )
    lines += [
        f"{_did(accepted, why, len(streams))}: {', '.join(streams)}"
        for why, streams in restarted.items()
    ]
    now = {key[s]: s for s in watch.streams}
    names = {key[s]: f"{s.metric} of {s.label}" for s in watch.streams}
    touched = {key[s] for s, why in did.items() if why is not None and key[s] in was}
    changed = _changed_accepts(was, now, touched, names, accepted)
    lines += changed.lines
    # the newcomer's F11: a restarted stream raises no alarm while it learns anew (those
    # a later accept restarted again learn from there: its own accept said so, unless
    # this one changed what it does there)
    learning = [
        s
        for s, why in did.items()
        if (why and s.segment_start == accepted)
        or (key[s] in changed.keys and s.segment_start != was[key[s]].segment_start)
    ]
    if learning := [s for s in learning if not s.last.judged]:
        left = max(_runs_to_learn(s, watch.settings.learning) for s in learning)
        lines.append(
            f"learning again: {counted(len(learning), 'stream')} restarted; "
            f"{_left_to_learn(left)}{', and cannot alarm on them until then' if left else ''}"
        )
    if other := sum(why is None for why in did.values()):
        lines.append(
            f"not a night of {counted(other, 'stream')} (another config, or after an event)"
        )
    return lines


@dataclass(frozen=True)
class _Changed:
    lines: list[str]  # "now restarted at RUN: N streams (why): ..." per run and kind
    keys: set[tuple[str, str]]  # the streams (config, metric) some other accept changed on


def _changed_accepts(
    was: dict[tuple[str, str], StreamVerdict],
    now: dict[tuple[str, str], StreamVerdict],
    streams: set[tuple[str, str]],
    names: dict[tuple[str, str], str],
    leave_out: str,
) -> _Changed:
    """What the accepts other than ``leave_out`` (the one accepted or withdrawn) do
    differently on ``streams`` in the watch ``now`` than in ``was``: a line per run and
    kind, "now restarted at RUN: ..." or "now confirmed at RUN: ...", its streams in the
    order of ``now`` (the series'; recheck R8: in hash order, another on every run)."""
    changed: dict[tuple[str, str], list[str]] = {}
    keys: set[tuple[str, str]] = set()
    for k in (k for k in now if k in streams):  # the series' order (a set's: per process)
        old = {run: w for run, w in was[k].accepts if run != leave_out}
        for run, w in now[k].accepts:
            if run != leave_out and old.get(run) != w:
                changed.setdefault((run, w), []).append(names[k])
                keys.add(k)
    lines = [
        f"now {_did(run, why, len(named))}: {', '.join(named)}"
        for (run, why), named in changed.items()
    ]
    return _Changed(lines, keys)


def _did(run: str, why: str, streams: int) -> str:
    """What accepting ``run`` did to ``streams`` streams, by its ``why``: confirmed their
    level, restarted them, or went back to a level an earlier accept had given up."""
    if not why:
        return f"confirmed at {run}: {counted(streams, 'stream')}"
    if why.startswith(BACK):
        return f"back at {run}: {counted(streams, 'stream')} {why.removeprefix('back ')}"
    return f"restarted at {run}: {counted(streams, 'stream')} ({why})"


def withdrawn_lines(before: SeriesWatch, after: SeriesWatch, withdrawn: str) -> list[str]:
    """What withdrawing run ``withdrawn``'s accept re-opened, from the watch with it
    (``before``) and without it (``after``), read as ``accepted_lines`` reads an accept:
    the streams whose level it confirmed and those it restarted (by why, and where each is
    judged from now), what the accepts that remain now do differently there, and the
    alarms of those streams no accept acknowledges any more."""
    was = {(s.config, s.metric): s for s in before.streams}
    now = {(s.config, s.metric): s for s in after.streams}
    did = {k: dict(s.accepts).get(withdrawn) for k, s in was.items()}
    name = {k: f"{s.metric} of {s.label}" for k, s in was.items()}
    lines = []
    if confirmed := [k for k, why in did.items() if why == ""]:
        lines.append(
            f"confirmed level withdrawn: {counted(len(confirmed), 'stream')} (its alarms up to "
            f"{withdrawn} no longer acknowledged by it)"
        )
    restarted: dict[tuple[str, str], list[str]] = {}
    for k, why in did.items():
        if why and k in now:
            restarted.setdefault((why, now[k].segment_start), []).append(name[k])
    lines += [
        f"restart at {withdrawn} withdrawn: {counted(len(streams), 'stream')} ({why}), judged "
        f"from {start} again: {', '.join(streams)}"
        for (why, start), streams in restarted.items()
    ]
    touched = {k for k, why in did.items() if why is not None and k in now}
    lines += _changed_accepts(was, now, touched, name, withdrawn).lines
    standing = [
        f"{name[k]} (alarm on {now[k].last_alarm})"
        for k, why in did.items()
        if why is not None and k in now and now[k].last_alarm
        if now[k].last_alarm != was[k].last_alarm
    ]
    if standing:
        lines.append(
            f"alarm no longer acknowledged: {counted(len(standing), 'stream')}: "
            + ", ".join(standing)
        )
    if other := sum(why is None for why in did.values()):
        lines.append(
            f"not a night of {counted(other, 'stream')} (another config, or after an event)"
        )
    return lines


def watch_markdown(watch: SeriesWatch) -> str:
    """The nightly artifact's section: each stream's last night and the alarms."""
    lines = [
        f"## Trend watch: series {watch.series}",
        "",
        f"{watch.settings.false_alarms_per_100_nights:g} false alarms per 100 nights over "
        f"{len(watch.streams)} streams in the long run "
        f"(CUSUM h = {evidence_figures(0, watch.threshold)[1]}).",
        "",
        "| config | metric | value | change [95%] | one-sided p (worse) | evidence | state |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in watch.streams:
        n = s.last
        # no p: the state says why (a smoke night's row read "learning" beside "partial")
        p = f"{n.p:.2g}" if n.p is not None else "not judged"
        state = "**ALARM**" if n.alarm else stream_state(s, watch.settings.learning)
        lines.append(
            f"| {s.label} | {s.metric} | {s.estimated or _value(n.value, s.metric)} | "
            f"{_change_interval(n, s.metric)} | {p} | "
            f"{evidence_figures(n.evidence, s.threshold)[0]} | {state} |"
        )
    if watch.events:
        lines += ["", "Events:", *[f"- {e.message}" for e in watch.events]]
    if watch.subset:  # a calibrated night: what it was watched on, and why it escalated
        lines += ["", *[f"- note: {n}" for n in watch.notes if "calibrated" in n]]
    lines += ["", *[f"- {line.strip()}" for line in alarm_lines(watch)]]
    return "\n".join(lines)


def _runs(result: GateResult) -> str:
    """The two runs, ``CANDIDATE vs BASELINE``, a run of the simulated backend marked as
    `status` and `trends` mark it: ``NAME [SIMULATED]``."""
    candidate, baseline = (
        f"{name} [SIMULATED]" if name in result.simulated else name
        for name in (result.candidate, result.baseline)
    )
    return f"{candidate} vs {baseline}"


def _case_name(c: GateCase) -> str:
    return f"{c.label} · {c.metric}"


def gate_junit(result: GateResult) -> str:
    """JUnit XML: one testcase per config × metric, a failure where it regressed."""
    suite = ET.Element(
        "testsuite",
        name=f"evalflow gate {_runs(result)}",
        tests=str(len(result.cases) + len(result.unmatched) + len(result.too_many_failed)),
        failures=str(len(result.regressed) + len(result.too_many_failed)),
        errors="0",
        skipped=str(sum(1 for c in result.cases if c.p_adjusted is None) + len(result.unmatched)),
    )
    floors = _floor_notes(result)
    said = result.changes or result.skipped or result.by_label or result.by_model
    said = said or result.failed or floors or result.unscored
    if said or _unseen(result) or result.too_weak or result.simulated:
        properties = ET.SubElement(suite, "properties")
        if result.simulated:
            ET.SubElement(properties, "property", name="SIMULATED", value=SIMULATED_BANNER)
        for change in result.changes:
            ET.SubElement(properties, "property", name="not run alike", value=change)
        for paired in _by_label(result):
            ET.SubElement(properties, "property", name="compared by label", value=paired)
        for paired in _by_model(result):
            ET.SubElement(properties, "property", name="paired by model", value=paired)
        for check in result.skipped:
            ET.SubElement(properties, "property", name="left out (--skip)", value=check)
        for line in _unscored_lines(result):
            ET.SubElement(properties, "property", name="not scored", value=line)
        if _unseen(result):
            value = _unseen(result).removeprefix("; but ")
            ET.SubElement(properties, "property", name="passed, but", value=value)
        if result.too_weak:
            name = f"exit {result.exit_code} (--require-power {result.require_drop:g})"
            ET.SubElement(properties, "property", name=name, value=_too_weak(result))
        for line in _failed_lines(result):
            ET.SubElement(properties, "property", name="failed requests", value=line)
        for line in floors:
            ET.SubElement(properties, "property", name="cannot drop", value=line)
    for c in result.cases:
        case = ET.SubElement(suite, "testcase", classname=c.label, name=c.metric)
        if c.at_floor:  # a pass that says nothing: said beside it too
            value = f"{c.metric} {_at_floor(c, result)}; this check is uninformative"
            case_properties = ET.SubElement(case, "properties")
            ET.SubElement(case_properties, "property", name="cannot drop", value=value)
        if c.regressed:
            failure = ET.SubElement(case, "failure", message=_gate_sentence(c))
            failure.text = _gate_sentence(c)
        elif c in result.not_in_baseline:
            why = f"{c.test}: rescore the baseline with {_rescore(result.baseline, c.metric)}"
            ET.SubElement(case, "skipped", message=why)
        elif c in result.not_in_candidate:
            why = f"{c.test}: rescore the candidate with {_rescore(result.candidate, c.metric)}"
            ET.SubElement(case, "skipped", message=why)
        elif c.p_adjusted is None:
            ET.SubElement(case, "skipped", message=f"not tested ({c.test})")
    for f in result.too_many_failed:
        case = ET.SubElement(suite, "testcase", classname=f.label, name="failed requests")
        failure = ET.SubElement(case, "failure", message=_over_sentence(result, f))
        failure.text = _over_sentence(result, f)
    for label, which in result.unmatched:
        case = ET.SubElement(suite, "testcase", classname=label, name="config")
        ET.SubElement(case, "skipped", message=f"not compared: {_unmatched(which)}")
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def _untested(result: GateResult) -> str:
    """How many checks had no p, and which metrics: they did not pass, they were not
    tested."""
    left_out = f" (left out: {', '.join(result.skipped)})" if result.skipped else ""
    if not result.untested:
        return left_out
    unscored = {c.metric: "no baseline scores" for c in result.unscored}
    unscored |= {c.metric: c.test for c in (*result.not_in_baseline, *result.not_in_candidate)}
    metrics = ", ".join(
        f"{m} ({unscored[m]})" if m in unscored else m
        for m in dict.fromkeys(c.metric for c in result.untested)
    )
    return (
        f" ({len(result.untested)} not tested: {metrics}; reasons in JUnit and summary)" + left_out
    )


def _unscored_lines(result: GateResult) -> list[str]:
    """A line per metric the baseline has no scores for (its other checks scored), or
    never scored (not one of its run's metrics): those checks are not tested, which a
    pass must say, not only count."""
    by_metric: dict[str, list[str]] = {}
    for c in result.unscored:
        by_metric.setdefault(c.metric, []).append(c.label)
    absent = {c.metric for c in result.not_in_baseline}
    dropped = {c.metric for c in result.not_in_candidate}
    lines = []
    for metric, labels in by_metric.items():
        every = len(labels) == sum(c.metric == metric for c in result.cases) > 1
        which = "any config" if every else ", ".join(labels)
        run = result.candidate if metric in dropped else result.baseline
        has = (
            f"never scored {metric} (not one of its metrics)"
            if metric in absent | dropped
            else f"has no {metric} scores for {which}"
        )
        lines.append(
            f"{metric} is not tested: {run} {has}; score it ({_rescore(run, metric)}) for the "
            "gate to judge it"
        )
    return lines


def _rescore(baseline: str, metric: str) -> str:
    return f"`evalflow rescore {baseline} --metrics {metric}`"


def _by_label(result: GateResult) -> list[str]:
    """The configs compared by label, grouped by what differs between the two runs' configs
    of that label (one sentence per group)."""
    groups: dict[str, list[str]] = {}
    for label, differs in result.by_label:
        groups.setdefault(differs, []).append(label)
    return [
        f"{', '.join(labels)}: no config of {result.baseline!r} has "
        f"{'its hash' if len(labels) == 1 else 'their hashes'}; compared with its config of "
        f"the same label, whose {differs} differs"
        for differs, labels in groups.items()
    ]


def _by_model(result: GateResult) -> list[str]:
    """The configs paired by model: matched neither by hash nor by label, the one config
    of their model in each run."""
    return [
        f"{pair}: no config of {result.baseline!r} has its hash or its label; the one config "
        "of its model in each run, compared (a value its label shows was edited)"
        for pair in result.by_model
    ]


def _unseen(result: GateResult) -> str:
    """What a pass could not see, said in its verdict: the drop its quality checks catch
    4 times in 5, where that is larger than the power note's (a small suite, or a tiny
    ``--alpha``). Empty on a failure or where the checks see such a drop."""
    drops = [c.detectable for c in result.cases if c.detectable is not None]
    if result.failing or result.underpowered is None:
        return ""
    low, high = _drop(min(drops)), _drop(max(drops))
    span = low if low == high else f"{low} to {high}"
    blind = " (beyond the metric's range: all but a collapse passes)" if min(drops) > 1 else ""
    return (
        f"; but at α = {result.alpha:g} a drop must reach {span}{blind} for its quality "
        "checks to catch it 4 times in 5: a smaller one passes unseen"
    )


def _passed_word(result: GateResult, passed: str, underpowered: str) -> str:
    return underpowered if result.too_weak else passed


def _too_weak(result: GateResult) -> str:
    """Why a pass exits non-zero: the check ``--require-power`` found too weak, or that
    it could judge none (``GateResult.blind``)."""
    weak = result.underpowered
    if weak is None:
        return f"--require-power {result.require_drop:g}: {_blind(result)}"
    assert weak.detectable is not None
    return (
        f"--require-power {result.require_drop:g}: {weak.metric} of {weak.label} "
        f"({weak.n} cases) catches only a drop of {_drop(weak.detectable)} 4 times in 5"
    )


def _blind(result: GateResult) -> str:
    """Why no quality check could be judged for power, per metric and reason: "no quality
    check can be judged for power: exact_match of every config is 0.000 in nc-base, its
    worst value: it cannot drop there"."""
    groups: dict[tuple[str, str], list[str]] = {}
    for c in result.blind:
        if c.at_floor:
            why = _at_floor(c, result)
        elif c.p_adjusted is None:
            why = f"is not tested ({c.test})"
        else:
            why = "is not on a 0–1 scale"
        groups.setdefault((c.metric, why), []).append(c.label)
    checks = {m: sum(c.metric == m for c in result.cases) for m, _ in groups}
    return "no quality check can be judged for power: " + "; ".join(
        f"{metric} of {'every config' if len(labels) == checks[metric] > 1 else ', '.join(labels)}"
        f" {why}"
        for (metric, why), labels in groups.items()
    )


def _at_floor(c: GateCase, result: GateResult) -> str:
    """Why a check at its metric's worst value says nothing: "is 0.000 in nc-base, its
    worst value: it cannot drop there"."""
    floor = _value(c.baseline, c.metric)
    return f"is {floor} {_where(result, [c])}, its worst value: it cannot drop there"


def _where(result: GateResult, cases: Sequence[GateCase]) -> str:
    """Where the baseline's figure of ``cases`` is: "in BASELINE" where they were compared
    on all its cases, else "on the 3 cases CANDIDATE and BASELINE share" (a smoke
    candidate against a full baseline: the figure is not the baseline's own, ncwatch-3)."""
    if all(c.n >= c.baseline_cases for c in cases):
        return f"in {result.baseline}"
    sizes = sorted({c.n for c in cases})
    n = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    return f"on the {n} cases {result.candidate} and {result.baseline} share"


def _failed_lines(result: GateResult) -> list[str]:
    """A line per config whose candidate had failed requests: those cases are out of its
    quality checks (scored cases only) and in its failure_rate check alone."""
    judged = (
        "failure_rate, which judges them, is left out (--skip)"
        if "failure_rate" in result.skipped
        else "failure_rate judges the failures"
    )
    return [
        f"requests failed in {result.candidate}: {f.label} on {f.failed} of {f.cases} cases "
        f"({result.baseline}: {f.base_failed} of {f.base_cases}); its quality checks compare "
        f"only the cases scored in both runs, {judged}"
        for f in result.failed
    ]


def _failed_but(result: GateResult) -> str:
    """A pass with failed requests in the candidate says so in its verdict."""
    if result.failing or not result.failed:
        return ""
    failed = sum(f.failed for f in result.failed)
    cases = sum(f.cases for f in result.failed)
    but = "and" if _unseen(result) else "but"  # one "but" a verdict
    return f"; {but} the candidate's requests failed on {failed} of {cases} cases (see below)"


def _over_sentence(result: GateResult, f: FailedRequests) -> str:
    """A config whose candidate's requests failed beyond ``--max-failures``."""
    return (
        f"requests failed on {f.failed} of {f.cases} cases ({f.failed / f.cases:.2f}), more "
        f"than --max-failures {result.max_failures:g}"
    )


def _over(result: GateResult) -> str:
    """Why the gate fails on failed requests alone (or also): the configs over the rate."""
    return f"--max-failures {result.max_failures:g}: requests failed in {result.candidate}: " + (
        "; ".join(f"{f.label} on {f.failed} of {f.cases} cases" for f in result.too_many_failed)
    )


def _unmatched(which: str) -> str:
    return f"this config ran {which}"


def _unmatched_lines(result: GateResult, prefix: str) -> list[str]:
    return [f"{prefix}{label}: {_unmatched(which)}" for label, which in result.unmatched]


def _gate_sentence(c: GateCase) -> str:
    return (
        f"{c.metric} of {c.label}: {_value(c.baseline, c.metric)} → "
        f"{_value(c.candidate, c.metric)} ({_change(c.change, c.metric)}; {c.test}, "
        f"Holm-adjusted p = {c.p_adjusted:.2g}, n = {c.n})"
    )


def gate_markdown(result: GateResult) -> str:
    """The summary for a CI job (e.g. ``$GITHUB_STEP_SUMMARY``)."""
    holm = f"(Holm over all checks, α = {result.alpha:g})"
    floors = _floor_notes(result)
    verdict = (
        f"**FAILED**: {len(result.regressed)} of {len(result.cases)} checks"
        f"{_untested(result)} regressed beyond noise {holm}"
        + (f"; and {_over(result)}" if result.too_many_failed else "")
        if result.regressed
        else f"**FAILED**: {_over(result)}; none of {len(result.cases)} checks"
        f"{_untested(result)} regressed beyond noise {holm}"
        if result.too_many_failed
        else f"{_passed_word(result, '**PASSED**', '**UNDERPOWERED**')}: none of "
        f"{len(result.cases)} checks{_untested(result)} regressed beyond noise {holm}"
        f"{_unseen(result)}{_failed_but(result)}"
    )
    settings = _settings_said(result.shared, result.n_key, "Every config: ")
    lines = [
        f"## evalflow gate: {_runs(result)}",
        "",
        *([f"> **{SIMULATED_BANNER}**", ""] if result.simulated else []),
        f"{verdict}.",
        "",
        *([f"{settings}.", ""] if settings else []),
        *[f"> **Not run alike:** {change}" for change in result.changes],
        *[f"> **Compared by label:** {paired}" for paired in _by_label(result)],
        *[f"> **Paired by model:** {paired}" for paired in _by_model(result)],
        *_unmatched_lines(result, "> **Not compared:** "),
        *[f"> **Not scored:** {line}" for line in _unscored_lines(result)],
        *[f"> **Cannot drop:** {line}" for line in floors],
        *[f"> **Failed requests:** {line}" for line in _failed_lines(result)],
        *(
            [""]
            if any((result.changes, result.unmatched, result.by_label, result.by_model, floors))
            or result.failed
            or result.unscored
            else []
        ),
        "| config | metric | baseline | candidate | change | test | p (Holm) | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in result.cases:
        p = "–" if c.p_adjusted is None else f"{c.p_adjusted:.2g}"
        mark = "❌ regressed" if c.regressed else ("✅" if c.p_adjusted is not None else "–")
        lines.append(
            f"| {c.label} | {c.metric} | {_value(c.baseline, c.metric)} | "
            f"{_value(c.candidate, c.metric)} | {_change(c.change, c.metric)} | {c.test} | "
            f"{p} | {mark} |"
        )
    return "\n".join(lines) + "\n"


def _drop(x: float) -> str:
    """A drop a check catches 4 times in 5 on its [0, 1] metric; beyond that range only
    that it is, as power's table says it ('1.10' read as a drop the metric can have)."""
    return f"{x:.2f}" if x <= 1 else "more than 1"


def _floor_notes(result: GateResult) -> list[str]:
    """A line per metric whose baseline is at its worst value (exact_match 0): the
    candidate cannot drop there, so those checks say nothing (newcomer N13)."""
    by_metric: dict[str, list[GateCase]] = {}
    for c in result.cases:
        if c.at_floor:
            by_metric.setdefault(c.metric, []).append(c)
    lines = []
    for metric, cases in by_metric.items():
        every = len(cases) == sum(c.metric == metric for c in result.cases)
        which = "every config" if every else ", ".join(c.label for c in cases)
        where = _where(result, cases)
        where = f"of {result.baseline}" if where.startswith("in ") else where
        lines.append(
            f"{metric} is {_value(cases[0].baseline, metric)} for {which} {where}: it cannot "
            f"drop there; {counted(len(cases), 'check')} uninformative"
        )
    return lines


def _too_small(result: GateResult, stated: float) -> str:
    """The note of a gate whose suite is too small to catch a ``stated`` drop: the drop
    each quality check catches 4 times in 5 (or their range), and the cases the weakest
    would need. A smaller level is not the cause to name: a full run can be too small."""
    checks = [c for c in result.cases if c.detectable is not None]
    worst = max(checks, key=lambda c: c.detectable or 0.0)
    need = math.ceil(worst.n * ((worst.detectable or 0.0) / stated) ** 2)
    collapse = " (beyond the metric's range: only a collapse)" if worst.detectable > 1 else ""
    if len(checks) <= 3:
        each = "the drop each quality check catches 4 times in 5: " + "; ".join(
            f"{c.metric} of {c.label} ({c.n} cases) {_drop(c.detectable or 0.0)}" for c in checks
        )
    else:
        low, high = _drop(min(c.detectable or 0.0 for c in checks)), _drop(worst.detectable or 0.0)
        # one figure where both ends read alike, not "from more than 1 to more than 1"
        span = f"is {low}" if low == high else f"goes from {low} to {high}"
        each = f"the drop its {len(checks)} quality checks catch 4 times in 5 {span}"
    return (
        f"note: the suite is too small for this gate to catch a {stated:g} drop: {each}"
        f"{collapse}; {worst.metric} of {worst.label} would need about {need} cases "
        "(`evalflow trends` pools a series' nights and catches smaller drops: docs/trends.md)"
    )


def _settings_said(shared: str, n_key: str, lead: str) -> str:
    """The line of the settings the configs share, as under `show`'s leaderboard
    (``settings_line``): ``lead`` and ``shared``, and ``n_key`` (what "n=" is) where
    the labels show it; for one config, whose label shows its every setting, the key
    alone (the gate read "every config: n= is num_predict, ...")."""
    return "; ".join(part for part in (shared and lead + shared, n_key) if part)


def gate_text(result: GateResult) -> str:
    """The terminal's lines: the verdict, what regressed, and what the two runs did not
    run alike."""
    changes = [
        f"note: not run alike (compared all the same): {change}" for change in result.changes
    ]
    changes += [f"note: compared by label: {paired}" for paired in _by_label(result)]
    changes += [f"note: paired by model: {paired}" for paired in _by_model(result)]
    changes += _unmatched_lines(result, "note: not compared: ")
    changes += [f"note: {line}" for line in _unscored_lines(result)]
    shared = (
        [said] if (said := _settings_said(result.shared, result.n_key, "every config: ")) else []
    )
    if result.underpowered is not None:
        changes.append(_too_small(result, result.stated_drop))
    changes += [f"note: {line}" for line in _floor_notes(result)]
    changes += [f"note: {line}" for line in _failed_lines(result)]
    over = [f"exit 1: {_over(result)}"] if result.too_many_failed else []
    if not result.failing:
        exit_line = [f"exit {result.exit_code}: {_too_weak(result)}"] if result.too_weak else []
        return "\n".join(
            [
                f"{_passed_word(result, 'gate passed', 'gate underpowered')}: "
                f"{_runs(result)}, {len(result.cases)} "
                f"checks{_untested(result)}, nothing regressed beyond noise "
                f"(Holm, α = {result.alpha:g}){_unseen(result)}{_failed_but(result)}",
                *shared,
                *changes,
                *exit_line,
            ]
        )
    if not result.regressed:  # failed on --max-failures alone
        return "\n".join(
            [
                f"gate FAILED: {_runs(result)}, requests failed "
                f"beyond --max-failures {result.max_failures:g}; {len(result.cases)} "
                f"checks{_untested(result)}, nothing regressed beyond noise "
                f"(Holm, α = {result.alpha:g})",
                *shared,
                *changes,
                *over,
            ]
        )
    return "\n".join(
        [
            f"gate FAILED: {_runs(result)}, "
            f"{len(result.regressed)} of {len(result.cases)} checks{_untested(result)} "
            f"regressed (Holm, α = {result.alpha:g}):",
            *[f"  {_gate_sentence(c)}" for c in result.regressed],
            *shared,
            *changes,
            *over,
        ]
    )


def moved_lines(streams: Sequence[StreamVerdict]) -> list[str]:
    """Why a calibrated night went on to the full suite, a line per stream that moved
    beyond noise (``SeriesWatch.beyond_noise``)."""
    out = []
    for s in streams:
        n = s.last
        change = _change_interval(n, s.metric)
        why = (
            "alarm"
            if n.alarm
            else "moved while learning"
            if n.moved
            else f"evidence {' of '.join(evidence_figures(n.evidence, s.threshold))}"
        )
        out.append(f"{s.metric} of {s.label} changed {change} ({why})")
    return out


def watch_payload(watch: SeriesWatch) -> dict:
    """The watch's verdicts as plain JSON, for the nightly's event: each alarm tonight
    (what, by how much, since when, which cases, where to look) and the events."""
    return {
        "series": watch.series,
        "experiment": watch.last.experiment,
        "streams": len(watch.streams),
        "false_alarms_per_100_nights": watch.settings.false_alarms_per_100_nights,
        "alarms": [
            {
                "config": s.config,
                "label": s.label,
                "metric": s.metric,
                "change": night.change,
                "by": s.by,
                "since": s.since,
                "z": night.z,
                "p": night.p,
                "evidence": night.evidence,
                "threshold": s.threshold,
                "flipped": list(s.flipped),
                "view": view_url(night.experiment),
                "message": s.describe(),
            }
            for s in watch.alarms
            if (night := s.alarm_night or s.judged_night)
        ],
        "events": [e.message for e in watch.events],
        "calibrated_cases": len(watch.subset),
    }
