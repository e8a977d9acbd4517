"""Elimination decisions against hand-computed cases, and the error rate when all
configs are equal."""

from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from scipy.stats import t as t_dist

from evaluation.adaptive import Race, RaceSettings, judge, over_limit, race_schedule


def _frame(**columns: list[float]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame(columns, index=[f"c{i}" for i in range(n)])


def test_leader_drops_config_with_exact_mcnemar_p():
    # 30 cases: A right on all, B right on the first 10: 20 discordant pairs, all for A.
    means = _frame(A=[1.0] * 30, B=[1.0] * 10 + [0.0] * 20)
    verdict = judge(
        means,
        ["A", "B"],
        groups=None,
        level=0.05,
        adjust=1,
        delta=0.01,
        score_type="binary",
    )
    assert verdict.leader == "A"
    (gone,) = verdict.eliminated
    assert gone.config == "B" and gone.by == "A" and gone.reason == "worse"
    assert gone.p_value == pytest.approx(0.5**20)  # one-sided exact McNemar
    assert gone.diff == pytest.approx(20 / 30)
    assert gone.test == "exact McNemar"


def test_borderline_pair_is_kept_or_dropped_by_the_level():
    # 8 discordant pairs for A, 2 for B: one-sided p = P(Bin(10, 1/2) >= 8) = 56/1024.
    a = [1.0] * 8 + [0.0] * 2 + [1.0] * 10
    b = [0.0] * 8 + [1.0] * 2 + [1.0] * 10
    means = _frame(A=a, B=b)
    kw = dict(groups=None, adjust=3, delta=0.01, score_type="binary")
    assert judge(means, ["A", "B"], level=0.05, **kw).eliminated == ()
    (gone,) = judge(means, ["A", "B"], level=0.06, **kw).eliminated
    assert gone.p_value == pytest.approx(56 / 1024)
    assert gone.p_adjusted == pytest.approx(3 * 56 / 1024)


def test_lower_is_better_metric_makes_the_smallest_the_leader():
    means = _frame(fast=[1.0, 1.1, 0.9, 1.0] * 5, slow=[2.0, 2.2, 1.9, 2.1] * 5)
    verdict = judge(
        means,
        ["slow", "fast"],
        groups=None,
        level=0.01,
        adjust=1,
        delta=0.01,
        score_type="continuous",
        higher_is_better=False,
    )
    assert verdict.leader == "fast"
    assert [e.config for e in verdict.eliminated] == ["slow"]
    assert verdict.eliminated[0].diff > 0  # the leader's advantage, in its direction


def test_level_splits_alpha_over_looks_and_rivals():
    ids = [f"c{i}" for i in range(300)]
    schedule = race_schedule(ids, [None] * 300, seed=0, suite="s")
    assert schedule.n_rounds == 8
    race = Race([f"k{i}" for i in range(24)], schedule, RaceSettings(alpha=0.05))
    assert race.level == pytest.approx(0.05 / (8 * 23))
    limited = Race(["a", "b"], schedule, RaceSettings(limits={"latency_s": 2.0}))
    assert limited.level == pytest.approx(0.025 / 8)
    assert limited.limit_level == pytest.approx(0.025 / 8)


def test_p95_over_limit_by_exact_binomial():
    # 20 generations, 5 over the limit: P(Bin(20, 0.05) >= 5).
    p = 1 - sum(comb(20, k) * 0.05**k * 0.95 ** (20 - k) for k in range(5))
    values = {"slow": [3.0] * 5 + [1.0] * 15, "fast": [1.0] * 19 + [3.0]}
    kw = dict(name="latency_s", limit=2.0, looks=2)
    (gone,) = over_limit(values, ["slow", "fast"], level=0.003, **kw)
    assert gone.config == "slow" and gone.reason == "limit"
    assert gone.p_value == pytest.approx(p)
    assert gone.p_adjusted == pytest.approx(2 * p)
    assert over_limit(values, ["slow", "fast"], level=0.002, **kw) == ()


def test_limits_are_judged_before_quality_so_the_pick_keeps_within_them():
    # "slow" is the best but over the latency limit on every generation; "fast" is
    # clearly worse than it and clearly better than "poor". Judged against "slow", "fast"
    # would be dropped with it; the question is the best config within the limit.
    ids = [f"c{i}" for i in range(40)]
    schedule = race_schedule(ids, [None] * 40, seed=0, suite="s")
    race = Race(["slow", "fast", "poor"], schedule, RaceSettings(limits={"latency_s": 1.0}))
    means = pd.DataFrame(
        {"slow": [1.0] * 40, "fast": [1.0] * 30 + [0.0] * 10, "poor": [0.0] * 40}, index=ids
    )
    latency = {"slow": [3.0] * 40, "fast": [0.5] * 40, "poor": [0.5] * 40}
    plan = race.next_round()
    first = race.close_round(
        means, limit_values={"latency_s": {c: latency[c][: len(plan.cases)] for c in latency}}
    )
    gone = {e.config: e for e in first.eliminated}
    assert gone["slow"].reason == "limit" and gone["slow"].by == "latency_s p95 > 1"
    assert first.leader == "fast"
    assert gone["poor"].reason == "worse" and gone["poor"].by == "fast"
    assert race.outcome is not None and race.outcome.pick == "fast"


def test_a_race_where_every_config_breaks_a_limit_picks_none():
    ids = [f"c{i}" for i in range(40)]
    schedule = race_schedule(ids, [None] * 40, seed=0, suite="s")
    race = Race(["a", "b"], schedule, RaceSettings(limits={"energy_j": 10.0}))
    race.next_round()
    means = pd.DataFrame({"a": [1.0] * 40, "b": [0.0] * 40}, index=ids)
    hungry = {"energy_j": {"a": [50.0] * 20, "b": [50.0] * 20}}
    record = race.close_round(means, limit_values=hungry)
    assert record.leader == "" and {e.reason for e in record.eliminated} == {"limit"}
    assert race.outcome.reason == "none_within_limits" and race.outcome.pick == ""
    assert race.outcome.describe().endswith("none to pick; no pick")


def test_the_outcome_names_the_pick_by_its_label():
    ids = [f"c{i}" for i in range(40)]
    race = Race(["a", "b"], race_schedule(ids, [None] * 40, seed=0, suite="s"), RaceSettings())
    race.next_round()
    race.close_round(pd.DataFrame({"a": [1.0] * 40, "b": [0.0] * 40}, index=ids))
    assert race.outcome.describe({"a": "m:1b t=0"}) == "stopped: one config left; pick m:1b t=0"
    assert race.outcome.describe() == "stopped: one config left; pick a"


def test_survivors_within_delta_are_a_tie():
    ids = [f"c{i}" for i in range(40)]
    schedule = race_schedule(ids, [None] * 40, seed=0, suite="s")
    base = np.tile([1.0, 0.0], 20)
    other = base.copy()
    other[0] = 0.0  # one case of 40 differs
    means = pd.DataFrame({"A": base, "B": other}, index=ids)
    race = Race(["A", "B"], schedule, RaceSettings(delta=0.2))
    while race.next_round() is not None:
        race.close_round(means)
    assert race.outcome.reason == "tie"
    assert set(race.outcome.survivors) == {"A", "B"}
    assert race.outcome.pick == "A"


def test_budget_stops_the_race_within_it():
    ids = [f"c{i}" for i in range(300)]
    schedule = race_schedule(ids, [None] * 300, seed=0, suite="s")
    means = pd.DataFrame(
        np.random.default_rng(0).integers(0, 2, (300, 4)).astype(float),
        index=ids,
        columns=list("ABCD"),
    )
    race = Race(list("ABCD"), schedule, RaceSettings(budget=250))
    while race.next_round() is not None:
        race.close_round(means)
    assert race.outcome.reason == "budget"
    assert race.spent <= 250
    assert [r.n_cases for r in race.rounds] == [20, 30, 45, 62]  # the last one cut to fit


def test_all_equal_configs_eliminate_the_best_at_most_at_alpha():
    """Six configs of equal quality, 150 cases, the same correlated case difficulty as the
    simulated backend: config "k0" (as good as any) is eliminated in at most alpha of
    the races, however many rounds each looks at."""
    k, n, trials, alpha = 6, 150, 100, 0.05
    ids = [f"c{i}" for i in range(n)]
    groups = [f"g{i // 10}" for i in range(n)]
    configs = [f"k{i}" for i in range(k)]
    threshold = norm.ppf(0.7)
    dropped = {c: 0 for c in configs}
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        latent = np.sqrt(0.5) * rng.normal(size=(n, 1)) + np.sqrt(0.5) * rng.normal(size=(n, k))
        means = pd.DataFrame((latent < threshold).astype(float), index=ids, columns=configs)
        schedule = race_schedule(ids, groups, seed=trial, suite="equal")
        race = Race(configs, schedule, RaceSettings(alpha=alpha))
        while race.next_round() is not None:
            race.close_round(means)
        for c in configs:
            dropped[c] += c not in race.outcome.survivors
    assert dropped["k0"] / trials <= alpha
    assert max(dropped.values()) / trials <= alpha


def test_configs_identical_so_far_are_not_a_tie_until_the_cases_bound_it():
    # 0 of 30 cases differ: the share that differs is below 1 − level^(1/30) (exact),
    # 0.107 at level 0.034, which bounds the difference: no tie at delta 0.01.
    means = _frame(A=[1.0, 0.0] * 15, B=[1.0, 0.0] * 15)
    kw = dict(groups=None, level=0.034, adjust=1, score_type="binary")
    assert not judge(means, ["A", "B"], delta=0.01, **kw).within_delta
    assert judge(means, ["A", "B"], delta=0.2, **kw).within_delta


def test_stop_when_no_rival_can_be_delta_better_than_the_leader():
    # leader − B is +0.15 on half the cases and −0.05 on the other half: mean 0.05,
    # paired t over 40 cases. One-sided at level 0.001 the lower bound is
    # 0.05 − t(0.999, 39)·sd/√40 = 0.05 − 3.3128·0.10127/√40 = −0.0030: B is not
    # significantly worse (t = 3.12, one-sided p = 0.0017 > 0.001), but it cannot be 0.01
    # better than the leader. The
    # old two-sided rule (both bounds inside ±delta) would not stop: the upper is 0.103.
    b = np.tile([0.3, 0.5], 20)
    means = _frame(L=b + np.tile([0.15, -0.05], 20), B=b)
    d = np.tile([0.15, -0.05], 20)
    lower = d.mean() - t_dist.isf(0.001, 39) * d.std(ddof=1) / np.sqrt(40)
    assert lower == pytest.approx(-0.0030, abs=1e-4)
    kw = dict(groups=None, level=0.001, adjust=1.0, score_type="continuous")
    verdict = judge(means, ["B", "L"], delta=0.01, **kw)
    assert verdict.leader == "L" and verdict.eliminated == ()
    assert verdict.within_delta
    assert not judge(means, ["B", "L"], delta=0.003, **kw).within_delta  # −0.0030 < −0.003


def test_delta_stop_picks_a_config_more_than_delta_below_the_best_at_most_at_alpha():
    """The best config at 0.8, three rivals 0.11 below it, delta 0.1: a race that stops
    on "within delta" with a rival as the pick has made the error the stop rule bounds;
    it happens in at most alpha of the races."""
    k, n, trials, alpha = 4, 150, 100, 0.05
    ids = [f"c{i}" for i in range(n)]
    groups = [f"g{i // 10}" for i in range(n)]
    configs = [f"k{i}" for i in range(k)]
    thresholds = norm.ppf([0.8, 0.69, 0.69, 0.69])
    wrong = stops = 0
    for trial in range(trials):
        rng = np.random.default_rng(1000 + trial)
        latent = np.sqrt(0.5) * rng.normal(size=(n, 1)) + np.sqrt(0.5) * rng.normal(size=(n, k))
        means = pd.DataFrame((latent < thresholds).astype(float), index=ids, columns=configs)
        schedule = race_schedule(ids, groups, seed=trial, suite="delta")
        race = Race(configs, schedule, RaceSettings(alpha=alpha, delta=0.1))
        while race.next_round() is not None:
            race.close_round(means, pd.Series(groups, index=ids))
        stops += race.outcome.reason == "tie"
        wrong += race.outcome.reason == "tie" and race.outcome.pick != "k0"
    assert stops > 0  # the rule is exercised
    assert wrong / trials <= alpha


def test_race_stops_within_delta_in_the_round_that_drops_a_config():
    # 40 cases, rounds of 20, 30, 40; level 0.05 / (3 rounds · 2 rivals) = 0.0083. In the
    # first round A is right on 10 cases and C on none: 10 discordant pairs, all for A,
    # exact p = 0.5**10 = 0.00098: C is dropped. B equals A on the first round (it
    # differs on one later case), so the bound on how much better B could be is the
    # exact 1 − 0.0083**(1/20) = 0.213: inside delta 0.3, and the race stops at once.
    ids = [f"c{i}" for i in range(40)]
    schedule = race_schedule(ids, [None] * 40, seed=0, suite="s")
    order = list(schedule.order)
    means = pd.DataFrame(0.0, index=ids, columns=["A", "B", "C"])
    means.loc[order[:10] + order[20:30], ["A", "B"]] = 1.0
    means.loc[order[35], "B"] = 1.0
    race = Race(["A", "B", "C"], schedule, RaceSettings(delta=0.3))
    while race.next_round() is not None:
        race.close_round(means)
    assert len(race.rounds) == 1
    (gone,) = race.rounds[0].eliminated
    assert gone.config == "C" and gone.p_value == pytest.approx(0.5**10)
    assert race.outcome.reason == "tie" and race.outcome.pick == "A"
    assert set(race.outcome.survivors) == {"A", "B"}
    # at delta 0.2 the bound (0.213) is not inside: no stop after the first round
    narrow = Race(["A", "B", "C"], schedule, RaceSettings(delta=0.2))
    narrow.next_round()
    narrow.close_round(means)
    assert narrow.outcome is None
