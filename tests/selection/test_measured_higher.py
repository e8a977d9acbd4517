"""Where the data are ample and the pick stands below the by-hand choice's measurement,
the answer says why (selection._measured_higher). Newcomer C3: `recommend qa
--max-latency 0.5` picked sim-large t=0 concise (measured 0.778 on 36 cases) over t=0.3
few_shot (0.861 on the same cases), both estimated "0.760", and said nothing."""

from __future__ import annotations

import pandas as pd

from evaluation.statistics.paired import PairedComparison
from selection._evidence_rule import Paired
from selection._measured_higher import measured_higher_note
from selection.frame import validate_training_frame
from selection.recommender import recommend_from_model
from selection.training import train_selector

from .conftest import FAST, config_named, synthetic_frame


def test_a_pick_measured_below_the_by_hand_choice_says_why_it_stands():
    """big:8b careful t=0 n=256 scored 1 and 0.8 by turns on its 12 qa cases (0.900,
    noisier than its twin n=64's 0.888): the multilevel model reads it below the twin,
    which is picked, by 0.0015."""
    frame = synthetic_frame()
    noisy = config_named("big:8b", "careful", 0.0, 256)
    on_qa = (frame["config_hash"] == noisy.hash) & (frame["task_type"] == "qa")
    frame.loc[on_qa, "quality"] = [1.0, 0.8] * 6
    model = train_selector(validate_training_frame(frame), FAST).model
    answer = recommend_from_model(model, "qa")
    assert answer.choice.config_hash == config_named("big:8b", "careful", 0.0, 64).hash
    assert answer.choice.evidence.quality_mean < 0.9
    (note,) = [n for n in answer.notes if "was measured higher" in n]
    assert note.startswith(
        f"{noisy.label} meets the limits by its measurements and was measured higher than "
        "this pick on the 12 cases both ran (0.900 vs 0.888, +0.012; paired t, Holm-adjusted "
        "p = 0.72 over 1 tested): not significantly, so the pick stands on the estimates"
    )
    assert note.endswith(
        ": 0.898 for this pick, 0.897 for it, a tie within their noise (the difference "
        "0.0015, its standard deviation 0.0062)"
    )


def _table() -> pd.DataFrame:
    config = {"model": "m:1b", "template": "t", "template_text": "{input}"}
    return pd.DataFrame(
        {
            "quality": [0.76047, 0.75976],
            "quality_sd": [0.02, 0.02],
            "measured": [True, True],
            "measured_n": [36, 36],
            "measured_n_cases": [36, 36],
            "measured_quality_mean": [0.778, 0.861],
            "measured_latency_p95": [0.42, 0.42],
            "temperature": [0.0, 0.3],
        },
        index=["pick", "hand"],
    ).assign(**config)


def test_estimates_written_alike_are_told_apart_and_a_clear_gap_is_no_tie():
    table = _table()
    by_hand = table.loc[["hand"]]
    note = measured_higher_note(table, "pick", by_hand, [], None)
    assert note is not None and "(0.861 on 36 cases) than this pick is estimated" in note
    assert note.endswith(
        ": 0.7605 for this pick, 0.7598 for it, a tie within their noise (the difference "
        "0.00071, its standard deviation 0.028)"
    )
    # what the two estimates share narrows their difference's noise: 0.0004 of 0.0008
    shared = measured_higher_note(table, "pick", by_hand, [], lambda a, b: 0.0002)
    assert shared is not None and shared.endswith("its standard deviation 0.02)")
    apart = table.assign(quality=[0.80, 0.70])
    assert measured_higher_note(apart, "pick", by_hand, [], None).endswith(
        ": 0.800 for this pick, 0.700 for it"
    )
    # a pick estimated above the by-hand choice's measurement: nothing to say
    assert measured_higher_note(table.assign(quality=[0.9, 0.7]), "pick", by_hand, [], None) is None


def test_the_paired_test_that_let_the_pick_stand_is_quoted():
    table = _table()
    result = PairedComparison(
        "hand", "pick", "exact_match", 36, 0, {}, 0.861, 0.778, 0.083, test="exact McNemar"
    )
    tests = [Paired("hand", result, 0.51, False, 1)]
    note = measured_higher_note(table, "pick", table.loc[["hand"]], tests, None)
    assert note is not None
    assert (
        "than this pick on the 36 cases both ran (0.861 vs 0.778, +0.083; exact McNemar, "
        "Holm-adjusted p = 0.51 over 1 tested): not significantly" in note
    )
