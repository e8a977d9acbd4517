"""The race's case order, its rounds, the levels, and replaying stored scores."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from evaluation.adaptive import (
    Race,
    RaceSettings,
    level_cases,
    race_schedule,
    replay,
    round_ends,
    stratified_order,
)
from evaluation.statistics import case_table
from evaluation.suites import Case

IDS = [f"c{i:03d}" for i in range(300)]
GROUPS = [f"g{i % 10}" for i in range(300)]


def test_round_ends_grow_geometrically_to_the_whole_suite():
    assert round_ends(300) == (20, 30, 45, 68, 102, 153, 230, 300)
    assert round_ends(12) == (12,)
    assert round_ends(25, first=10, growth=2) == (10, 20, 25)
    with pytest.raises(ValueError):
        round_ends(10, growth=1.0)


def test_order_is_seeded_complete_and_stratified_in_every_prefix():
    order = stratified_order(IDS, GROUPS, seed=3, suite="s")
    assert order == stratified_order(IDS, GROUPS, seed=3, suite="s")
    assert order != stratified_order(IDS, GROUPS, seed=4, suite="s")
    assert sorted(order) == IDS
    group_of = dict(zip(IDS, GROUPS, strict=True))
    for end in round_ends(300):
        counts = Counter(group_of[c] for c in order[:end])
        assert max(counts.values()) - min(counts.get(g, 0) for g in set(GROUPS)) <= 2


def test_levels_pick_first_cases_a_stratified_share_or_all():
    cases = [
        Case(id=i, input="x", references=("y",), group=g) for i, g in zip(IDS, GROUPS, strict=True)
    ]
    assert [c.id for c in level_cases(cases, "smoke")] == IDS[:3]
    subset = level_cases(cases, "subset", seed=1, suite="s")
    assert len(subset) == 60
    assert set(Counter(c.group for c in subset).values()) == {6}
    assert [c.id for c in subset] == sorted(c.id for c in subset)  # suite order
    # the subset is where a race with the same seed starts: its first rounds reuse it
    schedule = race_schedule(IDS, GROUPS, seed=1, suite="s")
    assert {c.id for c in subset} == set(schedule.order[:60])
    assert len(level_cases(cases, "full")) == 300
    assert [c.id for c in level_cases(cases, "full", limit=5)] == IDS[:5]
    with pytest.raises(ValueError, match="level must be one of"):
        level_cases(cases, "half")


def _long_rows(means: pd.DataFrame) -> pd.DataFrame:
    stacked = means.stack().rename("value").reset_index()
    stacked.columns = ["case_id", "config", "value"]
    return stacked.assign(sample_index=0, group=None, metric="accuracy")


def test_replay_of_partial_scores_reaches_the_same_rounds_and_stops_where_data_ends():
    rng = np.random.default_rng(5)
    configs = [f"k{i}" for i in range(6)]
    quality = np.array([0.3, 0.4, 0.5, 0.8, 0.82, 0.85])
    means = pd.DataFrame((rng.random((300, 6)) < quality).astype(float), index=IDS, columns=configs)
    schedule = race_schedule(IDS, GROUPS, seed=0, suite="s")
    full = Race(configs, schedule, RaceSettings())
    while full.next_round() is not None:
        full.close_round(means)
    assert len(full.rounds) >= 3

    # what a run killed during round 2 had stored: rounds 0-1 complete, round 2 partly
    stored = []
    for r in full.rounds[:3]:
        cases = list(r.cases) if r.index < 2 else list(r.cases[:5])
        stored.append(means.loc[cases, list(r.survivors)])
    rows = _long_rows(pd.concat(stored))
    again = Race(configs, schedule, RaceSettings())
    plan = replay(again, case_table(rows, "accuracy"))
    assert [r.eliminated for r in again.rounds] == [r.eliminated for r in full.rounds[:2]]
    assert plan.index == 2
    assert plan.configs == full.rounds[2].survivors
    assert plan.cases == full.rounds[2].cases


def test_replay_judges_each_rounds_limits_on_the_generations_run_by_then():
    # "late" turns slow only in the cases of the race's later rounds: a replay over all
    # stored generations must drop it where the live race did, not at round 1.
    configs = ["early", "late"]
    rng = np.random.default_rng(3)  # equal quality: only the limit can drop either
    means = pd.DataFrame((rng.random((300, 2)) < 0.7).astype(float), index=IDS, columns=configs)
    schedule = race_schedule(IDS, GROUPS, seed=0, suite="s")
    settings = RaceSettings(limits={"latency_s": 1.0})
    first_round = set(schedule.round_cases(0))
    latency = {c: (0.5 if c in first_round else 3.0) for c in IDS}
    measures = pd.DataFrame(
        [
            {"config": k, "case_id": c, "latency_s": latency[c] if k == "late" else 0.5}
            for k in configs
            for c in IDS
        ]
    )
    live = Race(configs, schedule, settings)
    while (plan := live.next_round()) is not None:
        run = {*live.cases_run, *plan.cases}
        seen = measures[measures["case_id"].isin(run)].groupby("config")["latency_s"]
        live.close_round(means, limit_values={"latency_s": {k: v.tolist() for k, v in seen}})
    dropped_live = [(r.index, [e.config for e in r.eliminated]) for r in live.rounds]
    assert dropped_live[0] == (0, [])  # round 1's generations were all fast
    assert ["late"] in [d for _, d in dropped_live]

    again = Race(configs, schedule, settings)
    assert replay(again, case_table(_long_rows(means), "accuracy"), measures) is None
    assert [(r.index, [e.config for e in r.eliminated]) for r in again.rounds] == dropped_live
    assert again.outcome.pick == "early"
