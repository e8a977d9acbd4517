import numpy as np
import pytest

from evaluation.statistics import adjust_p_values, compare_many
from tests.evaluation.statistics._rows import long_rows
from tests.support.reference_stats import multipletests


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


def test_holm_agrees_with_statsmodels_everywhere_and_collects_no_garbage(monkeypatch):
    """Ties, p-values adjusted past 1, rejections stopping at the first failure: the
    same as statsmodels, without its gc.collect() per call (0.2 s of CPU each in a
    process with Prefect loaded)."""
    import gc

    def collect(*args):
        raise AssertionError("gc.collect() called")

    rng = np.random.default_rng(7)
    families = [[0.2, 0.2, 0.01, 0.9], [0.04, 0.01, 0.03], [0.5], [0.001] * 4]
    families += [list(rng.uniform(0, 0.1, size=n)) for n in (2, 5, 12, 40)]
    for p in families:
        expected_reject, expected, _, _ = multipletests(p, alpha=0.05, method="holm")
        with monkeypatch.context() as m:
            m.setattr(gc, "collect", collect)
            adjusted, reject = adjust_p_values(p, 0.05, "holm")
        assert adjusted == pytest.approx(list(expected)), p
        assert reject == list(expected_reject), p


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
    assert multi.verdict.startswith(
        "no clear winner on rouge: 2 of 3 within noise of the best, b ("
    )
    assert "; significantly worse: c (Holm-adjusted, α = 0.05)" in multi.verdict


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


def _tied_means(names: tuple[str, str, str]):
    """Two configs with the same 0/1 mean (0.8) and a third at 0.65 that the first beats
    clearly (15 discordant cases, all its way) and the second does not (it fails where
    the third succeeds on 15 cases and vice versa on 30)."""
    third = np.zeros(100)
    third[:65] = 1
    first = third.copy()
    first[65:80] = 1
    second = third.copy()
    second[:15] = 0
    second[65:95] = 1
    return long_rows(dict(zip(names, [list(first), list(second), list(third)], strict=True)))


def test_the_verdict_does_not_depend_on_how_configs_tied_on_the_mean_are_ordered():
    # the same data under names that sort the two best configs either way
    results = {}
    for names in (("a1", "a2", "c"), ("b2", "b1", "c")):
        results[names] = compare_many(_tied_means(names), "acc", score_type="binary")
    for (first, second, _), multi in results.items():
        assert multi.ranking[0][1] == multi.ranking[1][1] == pytest.approx(0.8)
        assert set(multi.tied_at_top) == {first, second}
    assert all(m.significantly_worse == ("c",) for m in results.values())
    verdicts = [m.verdict for m in results.values()]
    assert "2 of 3 within noise of the best" in verdicts[0]
    assert "within noise of the best, a1 (0.800, as has a2); significantly worse: c" in verdicts[0]


def test_a_verdict_on_part_of_the_suite_says_so_and_on_which_cases():
    rows = _tied_means(("a1", "a2", "c"))  # 100 cases of a suite of 300
    multi = compare_many(rows, "acc", score_type="binary", suite_cases=300)
    assert "a1 (0.800, subset: 100 of 300 cases, as has a2)" in multi.verdict
    assert "different cases" not in multi.verdict
    # c ran 60 of them: its mean is of those, and each pair is tested on shared cases
    fewer = rows[~((rows["config"] == "c") & (rows["case_id"] < "c040"))]
    multi = compare_many(fewer, "acc", score_type="binary", suite_cases=300)
    assert "subset: 100 of 300 cases" in multi.verdict
    assert multi.verdict.endswith(
        "; the means rest on different cases (60 to 100): each pair is tested on the cases both ran"
    )
    whole = compare_many(rows, "acc", score_type="binary", suite_cases=100)
    assert "subset" not in whole.verdict  # the whole suite: nothing to say


def test_a_descriptive_metric_gets_no_verdict():
    multi = compare_many(
        _sweep({"short": -0.5, "long": 0.5}), "rouge", score_type="continuous",
        higher_is_better=None,
    )  # fmt: skip
    assert multi.winner is None and multi.tied_at_top == ()
    assert multi.verdict == "no verdict on rouge: descriptive: neither higher nor lower is better"
    assert len(multi.comparisons) == 1  # still compared


def test_readable_verdict_names_configs_by_their_distinguishing_label():
    from evaluation.labels import distinguishing_labels
    from evaluation.statistics.verdict import named

    names = ["sim-large:8b t=0 seed=42 tpl=concise", "sim-small:1b t=0.7 seed=42 tpl=plain"]
    short = distinguishing_labels(names)
    assert short == {
        names[0]: "sim-large:8b t=0 concise",
        names[1]: "sim-small:1b t=0.7 plain",
    }
    assert distinguishing_labels(["m a", "m a"]) == {"m a": "m a"}
    assert named(names, short) == "sim-large:8b t=0 concise and sim-small:1b t=0.7 plain"
    many = [f"m t={i}" for i in range(8)]
    assert named(many, distinguishing_labels(many), others=True) == "the other 8"


def test_stated_power_is_that_of_the_test_run():
    from statsmodels.stats.power import TTestPower

    from evaluation.statistics.power import mcnemar_min_detectable

    rng = np.random.default_rng(5)
    groups = [f"g{i // 4}" for i in range(36)]  # 9 clusters: the clustered paired t
    a = rng.normal(size=36) + np.repeat(rng.normal(scale=0.5, size=9), 4)
    rows = long_rows({"a": list(a + 0.3), "b": list(a + rng.normal(scale=0.3, size=36))},
                     metric="rouge", groups=groups)  # fmt: skip
    ac = compare_many(rows, "rouge", score_type="continuous").comparisons[0]
    c = ac.comparison
    assert c.test == "clustered paired t" and c.n_clusters == 9
    effect = TTestPower().solve_power(nobs=9, alpha=0.05, power=0.8)
    assert ac.power.min_detectable_difference == pytest.approx(effect * c.se_diff * 3, rel=1e-6)

    x = (rng.random(80) < 0.7).astype(float)
    y = np.where(rng.random(80) < 0.25, 1 - x, x)
    ac = compare_many(long_rows({"x": list(x), "y": list(y)}), "acc", score_type="binary")
    ac = ac.comparisons[0]
    share = np.mean(x != y)
    assert ac.comparison.test == "exact McNemar"
    assert ac.power.min_detectable_difference == pytest.approx(mcnemar_min_detectable(share, 80))


def test_nan_p_values_stay_out_of_the_family_too():
    """A NaN p-value made its own adjusted p NaN (read as 0 by a clipping caller)."""
    p_adj, reject = adjust_p_values([0.01, float("nan"), 0.04], 0.05, "holm")
    assert p_adj == pytest.approx([0.02, None, 0.04])
    assert reject == [True, False, True]


def test_a_zero_difference_gets_no_star_and_no_place_among_the_worse():
    """Newcomer's compare: a pair with difference 0 over two groups was starred in the
    table while the verdict named nobody significantly worse; both now agree."""
    groups = ["apollo-11"] * 4 + ["marie-curie"]
    rows = long_rows({"t0": [1, 1, 0, 0, 0], "t07": [0, 1, 1, 0, 0]}, groups=groups)
    multi = compare_many(rows, "acc", score_type="binary")
    (pair,) = multi.comparisons
    assert pair.comparison.p_value == 1 and pair.p_adjusted == 1
    assert not pair.significant and multi.significantly_worse == ()


def test_scores_are_written_as_the_tables_write_them_and_a_draw_names_no_best():
    """A newcomer read "the best, smollm2 t=0 (1)" and "(0, as has ...)" beside 0.778
    elsewhere, and a "best" among 4 configs that all scored 0."""
    from evaluation.statistics.verdict import decide

    ranking = [("m t=0", 1.0), ("m t=0.8", 1.0), ("g t=0", 0.5)]
    tied = decide("contains", ranking, [], True, "Holm", baseline=None)
    assert "m t=0 (1.000) was compared" in tied.text
    zeros = [(f"c{i}", 0.0) for i in range(4)]
    draw = decide("exact_match", zeros, [], True, "Holm-adjusted, α = 0.05")
    assert draw.text == "all 4 configs score 0.000 on exact_match: nothing to choose between"
    assert draw.winner is None and set(draw.tied_at_top) == {"c0", "c1", "c2", "c3"}
    fast = decide("latency_s", [("a", 30.8264), ("b", 71.2)], [], False, "Holm")
    assert "a (30.8)" in fast.text
