import numpy as np
import pandas as pd
import pytest

from evaluation.statistics import pareto_front, pareto_fronts


def _facts():
    #            quality latency energy
    # a           0.80    2.0     10   front (best quality)
    # b           0.70    1.0     12   front (fastest)
    # c           0.70    1.5      8   dominated on latency by b (same quality, slower)
    # d           0.60    3.0      5   dominated on latency by a and b; cheapest energy
    # e           NaN     0.5     NaN  left out
    return pd.DataFrame(
        {
            "config": ["a", "b", "c", "d", "e"],
            "quality": [0.80, 0.70, 0.70, 0.60, np.nan],
            "latency_p95_s": [2.0, 1.0, 1.5, 3.0, 0.5],
            "energy_j": [10.0, 12.0, 8.0, 5.0, np.nan],
        }
    )


def test_front_by_hand():
    front = pareto_front(_facts())
    assert front.configs == ("b", "a")  # by increasing latency
    assert front.excluded == ("e",) and "left out" in front.note
    assert front.points[0] == ("b", pytest.approx(0.7), pytest.approx(1.0))


def test_energy_front_and_unrecorded_energy():
    fronts = {f.cost: f for f in pareto_fronts(_facts())}
    # energy: a (0.80, 10), c (0.70, 8), d (0.60, 5) are non-dominated; b (0.70, 12) is beaten by c
    assert fronts["energy_j"].configs == ("d", "c", "a")
    no_energy = _facts().assign(energy_j=np.nan)
    assert [f.cost for f in pareto_fronts(no_energy)] == ["latency_p95_s"]


def test_lower_is_better_quality_and_ties():
    facts = pd.DataFrame(
        {"config": ["x", "y", "z"], "quality": [0.1, 0.1, 0.3], "latency_p95_s": [1.0, 1.0, 0.5]}
    )
    front = pareto_front(facts, higher_is_better=False)
    assert set(front.configs) == {"x", "y", "z"}  # identical points are both kept


def test_a_quality_every_config_ties_on_has_no_front():
    # newcomer N14 (b): exact_match 0 for all, its "front" only the fastest config
    tied = _facts().assign(quality=0.0)
    assert pareto_front(tied).ties and pareto_front(tied).configs == ("e",)
    assert pareto_fronts(tied) == []
    assert not pareto_front(_facts()).ties and len(pareto_fronts(_facts())) == 2


def test_no_usable_rows_and_missing_columns():
    empty = pareto_front(_facts().assign(quality=np.nan))
    assert empty.points == () and "undefined" in empty.note
    with pytest.raises(ValueError, match="lack column"):
        pareto_front(_facts().drop(columns="latency_p95_s"))
