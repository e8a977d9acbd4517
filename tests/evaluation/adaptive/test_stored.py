"""A race's rounds as stored rows, its round artifact and its standing table."""

import pandas as pd

from evaluation.adaptive import (
    Race,
    RaceSettings,
    race_schedule,
    race_standing,
    round_markdown,
    round_rows,
    stopped_above_kept,
)


def _race() -> Race:
    ids = [f"c{i}" for i in range(40)]
    means = pd.DataFrame(
        {"good": [1.0] * 40, "bad": [0.0] * 40, "twin": [1.0] * 39 + [0.0]}, index=ids
    )
    race = Race(
        ["good", "bad", "twin"], race_schedule(ids, [None] * 40, seed=0, suite="s"), RaceSettings()
    )
    while race.next_round() is not None:
        race.close_round(means)
    return race


def test_round_artifact_names_the_evidence_and_the_spending():
    race = _race()
    text = round_markdown(race, race.rounds[0], {"good": "G", "bad": "B", "twin": "T"}, True)
    assert text.startswith("# Race round 1 of at most 3 (SIMULATED)")
    assert "| B | G | +1.000 |" in text  # eliminated, by, difference
    assert "Generations so far: 60 of the full grid's 120 (50%)." in text
    assert "Still in: G, T" in text


def test_standing_marks_who_stopped_early_and_how_far_each_got():
    race = _race()
    rows = pd.DataFrame(round_rows(race))
    assert rows["outcome"].iloc[-1] == "exhausted" and rows["pick"].iloc[-1] == "good"
    standing = race_standing(rows, {"good": "G", "bad": "B", "twin": "T"})
    text = standing.markdown()
    assert "Race over: every case was run; the survivors could not be separated; pick G." in text
    assert "| G | 40 | pick |" in text
    assert "| T | 40 | survived |" in text
    assert "| B | 20 | stopped early in round 1: significantly worse than G" in text
    assert race_standing(rows.iloc[:0], {}) is None
    assert text.endswith(f"Error control: {race.bound_text}.")
    terminal = standing.text().splitlines()
    assert terminal[2:5] == [
        "config  cases run  status",
        "G              40  pick",
        "T              40  survived",
    ]
    assert terminal[-1] == f"Error control: {race.bound_text}."


def test_a_race_stored_without_its_bound_shows_none():
    # rounds an earlier evalflow stored (no bound column) until a run rewrites them
    rows = pd.DataFrame(round_rows(_race())).drop(columns="bound")
    assert "Error control" not in race_standing(rows, {}).markdown()


def test_a_config_stopped_early_that_leads_the_board_is_said():
    """Newcomers' C7: a race with a latency limit stopped the sim-large configs in round 1
    (20 of 36 cases); their means over those cases ranked them #1-#3 on the leaderboard,
    above the race's pick, with no word under it."""
    rows = pd.DataFrame(round_rows(_race()))
    names = {"good": "G", "bad": "B", "twin": "T"}
    assert stopped_above_kept(rows, ["bad", "good", "twin"], names) == (
        "Stopped early by the race, yet ranked above every config it kept: #1 B (20 cases; "
        "round 1: significantly worse than G). Their figures are over the cases they ran "
        "only, and the race did not keep them; the best-ranked config it kept is #2 G "
        "(Race, below)"
    )
    assert stopped_above_kept(rows, ["good", "bad", "twin"], names) == ""  # ranked below
    assert stopped_above_kept(rows.iloc[:0], ["bad", "good"], names) == ""  # no race
