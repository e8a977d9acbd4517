"""How the selector writes a quality figure: on the metric's own 0–1 scale, 3 decimals,
an interval as ``[low, high]``, as `show` and `compare` do (and as ``--min-quality``
takes it). Percent and "points" in recommend and retrain's text had users copy 54.9 from
one into a place that wants 0.549 (newcomer N6). Shares and latencies stay percent."""

from __future__ import annotations


def quality(value: float) -> str:
    """ "0.549"."""
    return f"{value:.3f}"


def quality_interval(value: float, low: float, high: float) -> str:
    """ "0.549 [0.297, 0.801]"."""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def quality_change(value: float) -> str:
    """A signed difference on the same scale: "+0.052", "-0.013"."""
    return f"{value:+.3f}"
