import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.statistics import compare_many, compare_scores, mean_interval
from tests.evaluation.statistics._rows import long_rows

FAST = settings(max_examples=40, deadline=None)
# statsmodels' Holm step runs gc.collect(), ~0.1 s inside pytest: fewer examples there
FEW = settings(max_examples=15, deadline=None)

BINARY = st.sampled_from([0.0, 1.0])
CONTINUOUS = st.floats(0.0, 1.0, allow_nan=False, width=32)
ORDINAL = st.integers(1, 5).map(float)
KINDS = {"binary": BINARY, "continuous": CONTINUOUS, "ordinal": ORDINAL}


@st.composite
def paired(draw, min_size: int = 2, max_size: int = 40):
    score_type = draw(st.sampled_from(sorted(KINDS)))
    n = draw(st.integers(min_size, max_size))
    values = st.lists(KINDS[score_type], min_size=n, max_size=n)
    return score_type, np.array(draw(values)), np.array(draw(values))


@FAST
@given(paired(), st.sampled_from(["auto", "t", "wilcoxon", "permutation", "bootstrap"]))
def test_p_values_lie_in_0_1(data, test):
    score_type, a, b = data
    res = compare_scores(a, b, score_type=score_type, test=test, n_resamples=199)
    assert res.p_value is not None and 0.0 <= res.p_value <= 1.0


@FAST
@given(paired())
def test_swapping_a_and_b_flips_the_difference_and_keeps_p(data):
    score_type, a, b = data
    ab = compare_scores(a, b, score_type=score_type)
    ba = compare_scores(b, a, score_type=score_type)
    assert ba.diff == pytest.approx(-ab.diff)
    assert ba.p_value == pytest.approx(ab.p_value)
    assert ba.test == ab.test
    if ab.diff_ci is None:  # every difference equal, not on 0/1 scores: no interval
        assert ba.diff_ci is None and ab.sd_diff == 0 and score_type != "binary"
    else:
        assert ba.diff_ci == pytest.approx((-ab.diff_ci[1], -ab.diff_ci[0]))


@FAST
@given(paired(), st.integers(1, 6))
def test_the_interval_contains_the_estimate(data, n_groups):
    score_type, a, b = data
    groups = np.arange(a.size) % n_groups
    for res in (
        compare_scores(a, b, score_type=score_type),
        compare_scores(a, b, groups=groups, score_type=score_type),
    ):
        if res.diff_ci is None:  # every difference equal, not on 0/1 scores: no interval
            assert res.sd_diff == 0 and score_type != "binary"
            continue
        low, high = res.diff_ci
        assert low <= res.diff + 1e-12 and res.diff - 1e-12 <= high
        assert low < high  # never a point: a few cases never make a difference certain
    est = mean_interval(a, groups)
    assert est.ci[0] <= est.mean + 1e-12 and est.mean - 1e-12 <= est.ci[1]


@FEW
@given(paired())
def test_identical_configs_are_never_significantly_different(data):
    score_type, a, _ = data
    res = compare_scores(a, a.copy(), score_type=score_type)
    assert res.diff == 0 and res.p_value == 1.0
    rows = long_rows({"x": list(a), "y": list(a), "z": list(a)})
    multi = compare_many(rows, "acc", score_type=score_type)
    assert multi.winner is None and set(multi.tied_at_top) == {"x", "y", "z"}
    assert not any(ac.significant for ac in multi.comparisons)
