"""A never-run config's p95 is held to at least its median on another task type times the
least slowdown between the two among the configs measured on both
(selection._carried_latency). Newcomer C8: `recommend summarization --max-latency 0.3`
picked sim-medium t=0.3 few_shot, predicted p95 0.237 s from its qa runs, where every
config measured on both ran about 3× slower on summarization; run, it measured 0.797 s."""

from __future__ import annotations

import pytest

from selection.frame import validate_training_frame
from selection.recommender import recommend_from_model
from selection.training import train_selector

from .conftest import FAST, config_named, synthetic_frame


@pytest.fixture(scope="module")
def slower_summaries():
    """Summaries take 3× the time of qa answers; big:8b was never run on summarization."""
    frame = synthetic_frame()
    summaries = frame["task_type"] == "summarization"
    frame.loc[summaries, "latency_s"] *= 3
    frame = frame[~(summaries & (frame["model"] == "big:8b"))]
    return train_selector(validate_training_frame(frame), FAST).model


def test_a_never_run_config_is_not_held_below_what_its_other_task_types_measure(
    slower_summaries,
):
    answer = recommend_from_model(slower_summaries, "summarization", max_latency_s=2.0)
    assert answer.choice.model == "tiny:1b"
    fast_big = config_named("big:8b", "careful", 0.0, 64)
    refused = {o.config_hash: o for o in (answer.excluded_best, *answer.refused_better)}
    (why,) = refused[fast_big.hash].violations
    assert why.startswith("estimated p95 latency 3.38 s (at least its median on qa (1.21 s ")
    assert why.endswith(
        "over 12 calls) × 2.79, the least slowdown from qa to summarization of the 8 configs "
        "measured on both; never run on summarization) > 2 s"
    )


def test_the_floor_leaves_measured_configs_and_a_limit_it_meets_alone(slower_summaries):
    answer = recommend_from_model(slower_summaries, "summarization", max_latency_s=4.0)
    choice = answer.choice
    assert choice.model == "big:8b" and not choice.evidence.measured
    assert choice.latency_p95_checked_s == pytest.approx(3.376, abs=0.001)
    assert choice.latency_p95_checked_by.startswith("at least its median on qa")
    qa = recommend_from_model(slower_summaries, "qa", max_latency_s=2.0)
    assert not any("least slowdown" in o.latency_p95_checked_by for o in qa.alternatives)
