"""A call's wait for a host slot is recorded apart from its service (issue 28.4), per
call and per stage."""

from __future__ import annotations

import asyncio

import pandas as pd

from evaluation.backends.retry import RetryPolicy
from evaluation.pipelines.summary import summarize_pipelines
from evaluation.run._pipelines import CaseRoute, run_case
from tests.evaluation.pipelines.test_runtime import MAP_REDUCE, SUITE, FakeBackend, item


def test_a_call_waiting_for_the_lanes_slot_records_the_wait_apart():
    """No spare slots: two maps take turns on the lane's slot, so the second waits for
    the first's service and its own service is one call's."""
    backend = FakeBackend(delay_s=0.2)
    work = item("map_reduce", MAP_REDUCE, document="a b c d", chunk_size=2, chunk_overlap=0)
    _, _, trace = asyncio.run(run_case(work, SUITE, CaseRoute(backend, RetryPolicy())))
    first, second, reduce = trace.stages
    assert (first.stage, second.stage, reduce.stage) == ("map", "map", "reduce")
    assert first.wait_s < 0.1 <= first.duration_s
    assert second.wait_s >= 0.5 * first.duration_s  # it waited for the first map
    assert second.duration_s < first.duration_s + 0.5 * second.wait_s  # not counted as work
    assert abs(second.start_s - first.start_s) < 0.1  # both asked at once


def test_the_stage_summary_has_the_wait_per_case_and_none_where_not_recorded():
    runs = pd.DataFrame(
        {
            "config_hash": ["a", "a", "b"],
            "case_uid": ["c1", "c2", "c1"],
            "pipeline": ["map_reduce"] * 3,
            "calls": [2, 2, 1],
            "wall_s": [1.0, 1.0, 1.0],
            "context_truncated_calls": [0, 0, 0],
        }
    )
    stages = pd.DataFrame(
        {
            "config_hash": ["a", "a", "a", "a", "b"],
            "stage": ["map"] * 5,
            "duration_s": [0.2, 0.2, 0.2, 0.2, 0.3],
            "wait_s": [0.0, 0.5, 0.0, 0.3, None],  # b: stored before waits were kept
            "prompt_tokens": [1] * 5,
            "output_tokens": [1] * 5,
        }
    )
    table = summarize_pipelines(runs, stages).stages.set_index("config")
    assert table.at["a", "seconds_per_case"] == 0.4
    assert table.at["a", "wait_s_per_case"] == 0.4
    assert pd.isna(table.at["b", "wait_s_per_case"])
