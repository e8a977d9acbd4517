"""The t quantile `show` uses without scipy is scipy's number."""

from __future__ import annotations

import math

import pytest
from scipy.special import stdtrit

from evaluation.statistics.student_t import t_quantile


@pytest.mark.parametrize("p", [0.975, 0.95, 0.995, 0.6, 0.025, 0.9999])
def test_t_quantile_is_scipys(p):
    for df in (1, 2, 3, 4, 7, 30, 99, 100, 101, 359, 1000, 12345, 199_999, 2.5):
        assert math.isclose(t_quantile(p, df), float(stdtrit(df, p)), rel_tol=2e-11), (p, df)


def test_t_quantile_is_symmetric_and_refuses_what_has_none():
    assert t_quantile(0.5, 9) == 0.0
    assert t_quantile(0.1, 9) == -t_quantile(0.9, 9)
    for p, df in ((0.0, 5), (1.0, 5), (0.5, 0)):
        with pytest.raises(ValueError):
            t_quantile(p, df)
