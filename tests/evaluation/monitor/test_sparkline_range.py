"""The home's sparklines keep a minimum y-range so a small change is not drawn as a cliff."""

import re

from evaluation.monitor._svg import sparkline


def _ys(svg: str) -> list[float]:
    line = re.search(r'<polyline[^>]* points="([^"]+)"', svg).group(1)
    return [float(p.split(",")[1]) for p in line.split()]


def test_one_percent_change_is_not_a_cliff() -> None:
    ys = _ys(str(sparkline([0.80, 0.80, 0.808], height=24)))
    assert abs(ys[0] - ys[-1]) < 6  # under a quarter of the 20-px plot area


def test_large_change_uses_full_height() -> None:
    ys = _ys(str(sparkline([0.2, 0.8], height=24)))
    assert ys[0] == 22.0 and ys[-1] == 2.0
