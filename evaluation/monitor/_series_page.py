"""The monitor's series page (``/series/NAME``): what ``evalflow trends NAME`` shows,
drawn. The verdicts come from the watch itself (``watch_series``), never recomputed
here; this module only turns one stream into an inline SVG chart (no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from evaluation.wording import PARTIAL_RUN

if TYPE_CHECKING:  # the series' modules import numpy and pandas; the other pages need neither
    from evaluation.series import SeriesEvent, StreamVerdict

WIDTH, HEIGHT, PAD = 520, 120, 14


RATIOS = ("latency_p95", "tokens_per_s")  # whose change is a ratio − 1, not a difference


def reference_level(stream: StreamVerdict) -> float | None:
    """The level the last judged night was compared with: its value − its change, or
    its value / (1 + its change) where the change is a ratio (p95 latency, tokens/s)."""
    for night in reversed(stream.nights):
        if night.judged and night.value is not None and night.change is not None:
            if stream.metric in RATIOS:
                return night.value / (1 + night.change)
            return night.value - night.change
    return None


def stream_chart(
    stream: StreamVerdict, events: Sequence[SeriesEvent], *, title: str = ""
) -> Markup:
    """Values over the stream's nights with their 95% interval whiskers, the reference
    level dashed, partial (smoke/subset) nights hollow and ``PARTIAL_RUN``, learning nights
    grey, alarmed nights red and named, and the events as vertical lines with their text.
    The y-range spans at least ±5% of the mean level so noise is not drawn as a cliff."""
    from evaluation.series import figure  # this page's watch loaded it already

    nights = stream.nights
    ref = reference_level(stream)
    ys = [v for n in nights for v in (n.value, n.low, n.high) if v is not None]
    if ref is not None:
        ys.append(ref)
    label = escape(title)
    if not ys:
        return Markup(f'<svg class="trend" role="img" aria-label="{label}: no values"></svg>')
    low, high = min(ys), max(ys)
    floor = max(abs(sum(ys) / len(ys)) * 0.1, 1e-9)
    if high - low < floor:
        mid = (low + high) / 2
        low, high = mid - floor / 2, mid + floor / 2
    steps = max(len(nights) - 1, 1)

    def x(i: int) -> float:
        return round(PAD + (WIDTH - 2 * PAD) * i / steps, 1)

    def y(v: float) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - low) / (high - low), 1)

    parts = [f"<title>{label}</title>"]
    if ref is not None:
        parts.append(
            f'<line class="reference" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(ref)}" y2="{y(ref)}" '
            f'stroke="currentColor" stroke-dasharray="4 3" opacity="0.5">'
            f"<title>reference {ref:.3g}</title></line>"
        )
    index = {n.experiment: i for i, n in enumerate(nights)}
    for e in events:
        if e.experiment in index:
            ex = x(index[e.experiment]) - 4
            parts.append(
                f'<line class="event" x1="{ex}" x2="{ex}" y1="0" y2="{HEIGHT}" stroke="#b60">'
                f"<title>{escape(e.message)}</title></line>"
                f'<text class="event" x="{ex + 2}" y="10" font-size="9">{escape(e.change)}</text>'
            )
    line = [
        (x(i), y(n.value)) for i, n in enumerate(nights) if n.value is not None and not n.partial
    ]
    if len(line) > 1:
        pts = " ".join(f"{a},{b}" for a, b in line)
        parts.append(f'<polyline fill="none" stroke="currentColor" opacity="0.6" points="{pts}"/>')
    for i, n in enumerate(nights):
        if n.value is None:
            continue
        cx, cy = x(i), y(n.value)
        if n.low is not None and n.high is not None:
            parts.append(
                f'<line class="whisker" x1="{cx}" x2="{cx}" y1="{y(n.low)}" y2="{y(n.high)}" '
                f'stroke="currentColor"/>'
            )
        if n.partial:
            kind, fill, note = "partial", 'fill="none" stroke="currentColor"', PARTIAL_RUN
        elif n.alarm:
            kind, fill, note = "alarm", 'fill="#c00"', "ALARM"
        elif n.load:  # an alarm on speed the machine's load explains
            kind, fill, note = "judged", 'fill="currentColor"', f"alarm set down: {n.load}"
        elif not n.judged:
            kind, fill, note = "learning", 'fill="#999"', "learning"
        else:
            kind, fill, note = "judged", 'fill="currentColor"', stream.direction_word(n)
        shown = figure(n.value, stream.metric)  # as the line under the chart and trends
        if n.low is not None and n.high is not None:
            shown += f" [{figure(n.low, stream.metric)}, {figure(n.high, stream.metric)}]"
        if stream.cases:  # watched on the calibrated cases: every night on the same share
            note += f"; watched on {stream.cases}"
        parts.append(
            f'<circle class="{kind}" cx="{cx}" cy="{cy}" r="3" {fill}>'
            f"<title>{escape(n.experiment)}: {shown} ({note})</title></circle>"
        )
        if n.alarm:
            parts.append(
                f'<text class="alarm" x="{cx}" y="{HEIGHT - 2}" font-size="9" fill="#c00" '
                f'text-anchor="end">{escape(n.experiment)}</text>'
            )
    return Markup(
        f'<svg class="trend" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{label}">{"".join(parts)}</svg>'
    )
