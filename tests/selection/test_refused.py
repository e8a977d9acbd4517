"""Which refused candidates estimated better than the pick the answer names
(selection._refused). Newcomer C1: the demo at `--max-latency 0.25` named three sim-large
configs (p95 about 0.45 s) and sim-medium t=0 concise, and never sim-medium t=0.7 concise,
which `show` lists at p95 0.246 s and measured 0.667 against the pick's 0.556: taken by
estimated quality alone, the list stopped before it."""

from __future__ import annotations

import pandas as pd

from selection._candidates import candidate_table
from selection._refused import named_refused
from selection._scoring import scored_candidates
from selection.frame import validate_training_frame
from selection.recommender import recommend_from_model
from selection.training import train_selector

from .conftest import FAST, config_named, synthetic_frame


def test_a_near_miss_is_named_before_the_far_ones():
    """tiny:1b careful t=0 n=256, made better than the tiny:1b pick, is refused at a limit
    between its p95 estimate and its p95 with margin; its 12 calls meet the limit. Five
    big:8b configs estimated better still (p95 1.4-2.4 s) named it out of the list."""
    frame = synthetic_frame()
    near = config_named("tiny:1b", "careful", 0.0, 256)
    mask = frame["config_hash"] == near.hash
    frame.loc[mask, "quality"] = (frame.loc[mask, "quality"] + 0.15).clip(0, 1)
    model = train_selector(validate_training_frame(frame), FAST).model
    table, _ = candidate_table(model, None, "qa")
    table = scored_candidates(model, table, "qa", model.typical_input_chars["qa"])
    row = table.loc[near.hash]
    limit = float(row["latency_p95"] + row["latency_p95_safe"]) / 2
    assert row["measured_latency_p95"] <= limit and row["measured_n"] >= 10
    answer = recommend_from_model(model, "qa", max_latency_s=limit)
    assert answer.choice.model == "tiny:1b" and answer.excluded_best.model == "big:8b"
    assert answer.choice.quality.value < row["quality"]
    assert answer.refused_better[0].config_hash == near.hash
    assert [o.model for o in answer.refused_better[1:]] == ["big:8b", "big:8b"]
    assert answer.refused_more == 5 and "\n    and 5 more\n" in answer.explain()


def _candidates(rows: dict[str, tuple[float, float, float, float, int]]) -> pd.DataFrame:
    """Per name: estimated quality, measured quality, p95 estimate, measured p95, calls."""
    columns = ["quality", "measured_quality_mean", "latency_p95", "measured_latency_p95"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[*columns, "measured_n"])
    return table.assign(energy_j=100.0)


def test_measured_within_the_limits_first_then_estimated_within_then_the_rest():
    better = _candidates(
        {
            "far": (0.90, 0.90, 2.0, 2.0, 12),
            "far2": (0.85, 0.85, 2.0, 2.0, 12),
            "estimated": (0.70, 0.70, 0.9, 1.1, 12),  # its estimate meets 1 s
            "few_calls": (0.75, 0.75, 1.1, 0.9, 5),  # measured within, on too few calls
            "measured": (0.65, 0.60, 1.05, 0.95, 12),
            "measured_better": (0.60, 0.75, 1.05, 0.95, 12),  # `show` ranks it first
        }
    )
    named, more = named_refused(better, 1.0, None, None, 3)
    assert (named, more) == (["measured_better", "measured", "estimated"], 3)
    named, _ = named_refused(better, 1.0, None, None, 10)
    assert named[3:] == ["far", "far2", "few_calls"]  # the rest by estimated quality
    # an energy limit the estimate breaks makes a config measured within latency a far one
    named, _ = named_refused(
        better.assign(energy_j=[100, 100, 100, 100, 300, 100]), 1.0, 200, None, 3
    )
    assert named == ["measured_better", "estimated", "far"]
    # a quality floor: met by the measurement or by the estimate
    below = better.loc[["estimated", "measured", "measured_better"]]
    named, more = named_refused(below, None, None, 0.72, 2)
    assert (named, more) == (["measured_better", "estimated"], 1)
