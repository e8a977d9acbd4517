"""Numbers carry the decimals their intervals support."""

from __future__ import annotations

import math

import pytest

from evaluation.statistics.precision import column_decimals, decimals, rounded, told_apart


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


@pytest.mark.parametrize(
    ("value", "limit", "digits", "expected"),
    [
        (0.6996, 0.7, 3, ("0.6996", "0.7000")),  # was "0.700 < 0.700"
        (0.2, 0.7, 3, ("0.200", "0.700")),
        (0.7, 0.7, 3, ("0.700", "0.700")),  # equal stays as short as the limit needs
        (0.69999999, 0.7, 3, ("0.700", "0.700")),  # 3 more decimals cannot tell them apart
        (89.5, 90.0, 0, ("89.5", "90.0")),  # was "90% < 90%"
        (37.2, 37.5, 0, ("37.2", "37.5")),  # a 37.5 limit is never written "38"
    ],
)
def test_told_apart_writes_a_figure_and_its_limit_so_they_differ_where_they_do(
    value, limit, digits, expected
):
    assert told_apart(value, limit, digits) == expected
