"""How many decimals a number deserves: as many as its interval supports (two significant
digits of the half-width), so a table shows 0.78 [0.60, 0.89], never 0.7777777777777778."""

from __future__ import annotations

import math
from collections.abc import Iterable

DEFAULT_DECIMALS = 3  # a number without an interval
MOST_DECIMALS = 4


def decimals(half_width: float | None) -> int:
    """Decimals for a value known to ± ``half_width``: two significant digits of it."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return DEFAULT_DECIMALS
    return min(MOST_DECIMALS, max(0, 1 - math.floor(math.log10(half_width))))


def column_decimals(lows: Iterable[object], highs: Iterable[object]) -> int:
    """One number of decimals for a column of intervals (its median half-width), so the
    column lines up and close configs are not rounded differently."""
    halves = _half_widths(lows, highs)
    return decimals(halves[len(halves) // 2] if halves else None)


def finest_decimals(lows: Iterable[object], highs: Iterable[object]) -> int:
    """One number of decimals for a column of intervals: the most any of them supports,
    so no row is written coarser than its own interval allows whatever rows it is listed
    with (`compare` across experiments: simulated latencies known to ±0.02 s read
    "-0.2 [-0.2, -0.2]" beside real ones known to ±0.4 s, "-0.198 [-0.215, -0.180]" alone)."""
    halves = _half_widths(lows, highs)
    return decimals(halves[0] if halves else None)


def _half_widths(lows: Iterable[object], highs: Iterable[object]) -> list[float]:
    """The half-widths of the intervals that have one, smallest first."""
    return sorted(
        (float(hi) - float(lo)) / 2
        for lo, hi in zip(lows, highs, strict=True)
        if _finite(lo) and _finite(hi) and float(hi) > float(lo)
    )


def fixed(value: float, digits: int = DEFAULT_DECIMALS, *, signed: bool = False) -> str:
    """The one way a number is written with ``digits`` decimals (``signed``: with its sign,
    as a difference is): a value that rounds to zero is ``0.000``, never ``-0.000`` or
    ``+0.000``, whatever side of zero it fell on."""
    text = f"{value:.{digits}f}"
    if math.isfinite(value) and float(text) == 0:
        return f"{0.0:.{digits}f}"
    return f"{value:+.{digits}f}" if signed else text


def significant(value: float, figures: int = 3) -> str:
    """``value`` to ``figures`` significant figures, trailing zeros kept and never in
    exponent form (0.050, 0.055, 1.23, 12.3, 123, 1234): 0.05 against 0.055 written to
    two decimals read as a tenth apart; a latency is shown so whatever its size."""
    if not math.isfinite(value) or value == 0:
        return fixed(value, figures - 1)
    places = max(0, figures - 1 - math.floor(math.log10(abs(value))))
    text = fixed(value, places)
    if places and len(text.lstrip("-").replace(".", "").lstrip("0")) > figures:
        text = fixed(value, places - 1)  # rounding went up a place: 0.09996 -> 0.100
    return text


def told_apart(
    value: float, other: float, digits: int = DEFAULT_DECIMALS, *, figures: bool = False
) -> tuple[str, str]:
    """``value`` and ``other`` (a limit, as a rule) written alike with ``digits`` decimals
    (``figures``: that many significant figures, as ``:g`` writes them), or up to 3 more:
    as many as ``other`` needs to be written as it is (a 37.5% limit is not "38%"), and
    as it takes for two different numbers not to read equal (a refusal or an alarm that
    said "0.700 < 0.700" or "0.45 s > 0.45 s" explained nothing); where 3 more do not
    tell them apart, or they are equal, no more than ``other`` needs."""

    def write(x: float, places: int) -> str:
        return f"{x:.{places}g}" if figures else fixed(x, places)

    most = digits + 3
    least = next(
        (p for p in range(digits, most) if math.isclose(float(write(other, p)), other)), most
    )
    apart = (p for p in range(least, most + 1) if write(value, p) != write(other, p))
    places = next(apart, least)
    return write(value, places), write(other, places)


def rounded(value: object, digits: int) -> object:
    """``value`` rounded to ``digits`` when it is a finite float; anything else unchanged
    (None and NaN stay what they are)."""
    if isinstance(value, float) and math.isfinite(value):
        return round(value, digits) + 0.0  # + 0.0: -0.0 becomes 0.0
    return value


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))
