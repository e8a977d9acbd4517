"""Small inline SVG charts for the monitor's pages (no JavaScript, no library): a
sparkline of a series' points and a line chart of one figure over runs. Values are
numbers drawn as coordinates only; titles are escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape


def _finite(values: Sequence[float | None]) -> list[tuple[int, float]]:
    return [
        (i, float(v))
        for i, v in enumerate(values)
        if v is not None and isinstance(v, int | float) and math.isfinite(v)
    ]


def sparkline(
    values: Sequence[float | None], *, width: int = 120, height: int = 24, title: str = ""
) -> Markup:
    """A polyline over ``values`` (None: a gap, the others joined), the last point
    marked; an empty box where nothing is finite. ``data-points`` counts the drawn points;
    where some are gaps, the hover title says how many runs of how many are drawn."""
    points = _finite(values)
    drawn = f": {len(points)} of {len(values)} runs drawn" if 0 < len(points) < len(values) else ""
    label = escape(title + drawn)
    if not points:
        return Markup(
            f'<svg class="spark" width="{width}" height="{height}" role="img" '
            f'aria-label="{label}: no points" data-points="0"></svg>'
        )
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    # A floor on the y-range (±5 % of the mean level) so autoscale does not draw a
    # +1 % wobble as a cliff; the points stay centred in the widened range.
    mid = (low + high) / 2
    floor = max(abs(sum(v for _, v in points) / len(points)) * 0.1, 1e-9)
    if high - low < floor:
        low, high = mid - floor / 2, mid + floor / 2
    span = high - low
    steps = max(len(values) - 1, 1)
    pad = 2

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * i / steps
        y = height - pad - (height - 2 * pad) * (v - low) / span
        return round(x, 1), round(y, 1)

    coords = [xy(i, v) for i, v in points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    lx, ly = coords[-1]
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}" data-points="{len(points)}">'
        f"<title>{label}</title>"
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{line}"/>'
        f'<circle cx="{lx}" cy="{ly}" r="2" fill="currentColor"/></svg>'
    )


def line_chart(
    values: Sequence[float | None],
    *,
    title: str,
    unit: str = "",
    width: int = 360,
    height: int = 90,
) -> Markup:
    """A labelled chart of one figure per run (oldest first): the line, its lowest and
    highest values written at the side."""
    points = _finite(values)
    shown = [v for _, v in points]
    caption = escape(title)
    if shown:
        caption = Markup("{} <small>{} – {} {}</small>").format(
            title, _short(min(shown)), _short(max(shown)), unit
        )
    return Markup('<figure class="chart"><figcaption>{}</figcaption>{}</figure>').format(
        caption, sparkline(values, width=width, height=height, title=title)
    )


def _short(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
