"""Numbers carry the decimals their intervals support."""

from __future__ import annotations

import math

import pytest

from evaluation.statistics.precision import column_decimals, decimals, rounded


@pytest.mark.parametrize(
    ("half_width", "expected"),
    [(0.145, 2), (0.0145, 3), (0.4, 2), (1.5, 1), (25.0, 0), (1e-9, 4), (None, 3), (0.0, 3)],
)
def test_two_significant_digits_of_the_half_width(half_width, expected):
    assert decimals(half_width) == expected


def test_a_column_uses_its_median_half_width_and_skips_undefined_intervals():
    lows = [0.60, 0.64, None, math.nan, 0.5]
    highs = [0.89, 0.87, None, math.nan, 0.5]  # the last one is degenerate
    assert column_decimals(lows, highs) == 2


def test_rounded_leaves_what_is_not_a_finite_float():
    assert rounded(7 / 9, 2) == 0.78
    assert rounded(None, 2) is None and math.isnan(rounded(math.nan, 2)) and rounded(3, 1) == 3
