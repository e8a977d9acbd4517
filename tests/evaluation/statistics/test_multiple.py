import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from evaluation.statistics import adjust_p_values, compare_many
from tests.evaluation.statistics._rows import long_rows


def _sweep(shifts: dict[str, float], n: int = 150, seed: int = 0):
    """Continuous scores sharing a per-case difficulty; config means differ by ``shifts``."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(size=n)
    return long_rows(
        {c: list(difficulty + s + rng.normal(scale=0.3, size=n)) for c, s in shifts.items()},
        metric="rouge",
    )


def test_holm_by_hand_and_against_statsmodels():
    # sorted p: 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max: 0.03, 0.06, 0.06
    p_adj, reject = adjust_p_values([0.01, 0.04, 0.03], 0.05, "holm")
    assert p_adj == pytest.approx([0.03, 0.06, 0.06])
    assert reject == [True, False, False]
    p = [0.001, 0.012, 0.02, 0.3, 0.049]
    assert adjust_p_values(p, 0.05, "holm")[0] == pytest.approx(
        list(multipletests(p, alpha=0.05, method="holm")[1])
    )
    # the statsmodels default ("hs", Holm–Šidák) differs: the method is passed explicitly
    assert multipletests(p, alpha=0.05)[1][1] != pytest.approx(
        adjust_p_values(p, 0.05, "holm")[0][1]
    )


def test_benjamini_hochberg_by_hand():
    # sorted p·m/rank: 0.01·3/1 = 0.03, 0.03·3/2 = 0.045, 0.04·3/3 = 0.04 → step-up min:
    # 0.03, 0.04, 0.04
    p_adj, _ = adjust_p_values([0.01, 0.04, 0.03], 0.05, "fdr_bh")
    assert p_adj == pytest.approx([0.03, 0.04, 0.04])


def test_undefined_p_values_stay_out_of_the_family():
    p_adj, reject = adjust_p_values([0.01, None, 0.04], 0.05, "holm")
    assert p_adj == pytest.approx([0.02, None, 0.04])
    assert reject == [True, False, True]


def test_clear_winner_is_declared():
    multi = compare_many(
        _sweep({"good": 0.5, "ok": 0.1, "bad": 0.0}), "rouge", score_type="continuous"
    )
    assert multi.winner == "good" and multi.tied_at_top == ("good",)
    assert [c for c, _ in multi.ranking] == ["good", "ok", "bad"]
    assert len(multi.comparisons) == 3 and "wins" in multi.verdict
    assert all(ac.power.n_comparisons == 3 for ac in multi.comparisons)


def test_close_configs_are_tied_at_the_top():
    multi = compare_many(_sweep({"a": 0.2, "b": 0.19, "c": -0.5}), "rouge", score_type="continuous")
    assert multi.winner is None
    assert set(multi.tied_at_top) == {"a", "b"}
    assert "tied at the top" in multi.verdict


def test_lower_is_better_flips_the_ranking():
    multi = compare_many(
        _sweep({"fast": -0.5, "slow": 0.5}),
        "rouge",
        score_type="continuous",
        higher_is_better=False,
    )
    assert multi.winner == "fast"


def test_baseline_mode_compares_each_config_with_the_baseline_only():
    rows = _sweep({"base": 0.0, "x": 0.5, "y": 0.4})
    multi = compare_many(rows, "rouge", score_type="continuous", baseline="base")
    assert {(ac.comparison.a, ac.comparison.b) for ac in multi.comparisons} == {
        ("x", "base"),
        ("y", "base"),
    }
    assert multi.winner is None and multi.tied_at_top == ()
    assert "compare all pairs" in multi.verdict
    best_is_base = compare_many(
        _sweep({"base": 0.5, "x": 0.0}), "rouge", score_type="continuous", baseline="base"
    )
    assert best_is_base.winner == "base"


def test_power_columns_use_alpha_over_m_and_delta():
    multi = compare_many(
        _sweep({"a": 0.1, "b": 0.0, "c": 0.05}), "rouge", score_type="continuous", delta=0.02
    )
    for ac in multi.comparisons:
        c = ac.comparison
        assert ac.power.n == c.n_used and ac.power.cases_needed > 0
        assert ac.power.var_diff == pytest.approx(c.sd_diff**2)


def test_a_config_without_shared_cases_cannot_be_separated_from_the_top():
    rows = long_rows(
        {
            "A": [1.0, 1.0, 1.0, np.nan],
            "B": [0.0, 0.0, 0.0, np.nan],
            "C": [np.nan, np.nan, np.nan, 0.0],
        }
    )
    multi = compare_many(rows, "acc", score_type="binary")
    assert multi.winner is None and "C" in multi.tied_at_top
    c_vs_a = next(
        ac for ac in multi.comparisons if {"A", "C"} == {ac.comparison.a, ac.comparison.b}
    )
    assert c_vs_a.p_adjusted is None and "no case scored by both" in c_vs_a.comparison.note


def test_bad_arguments_are_clear_errors():
    rows = _sweep({"a": 0.0, "b": 0.1})
    with pytest.raises(ValueError, match="adjust must be one of"):
        compare_many(rows, "rouge", score_type="continuous", adjust="hs")
    with pytest.raises(ValueError, match="no scores on 'rouge' for config"):
        compare_many(rows, "rouge", score_type="continuous", baseline="zzz")
