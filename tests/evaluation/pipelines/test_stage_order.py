"""The time-per-stage table: stages in the order the pipeline runs them, whichever case
comes first; an embedding made once for the run is charged to no config."""

from __future__ import annotations

import pandas as pd

from evaluation.pipelines.summary import SHARED, summarize_pipelines


def test_stages_run_in_order_and_the_shared_embedding_is_one_row_of_its_own():
    # configs a and b share the corpus's embedding, which a's second case computed
    runs = pd.DataFrame(
        {
            "config_hash": ["a", "a", "b", "b"],
            "case_uid": ["c1", "c2", "c1", "c2"],
            "pipeline": ["rag"] * 4,
            "calls": [2] * 4,
            "wall_s": [1.0] * 4,
            "context_truncated_calls": [0] * 4,
        }
    )
    calls = [  # (config, case, position, stage, shared)
        ("a", "c1", 0, "retrieve", False),
        ("a", "c1", 1, "answer", False),
        ("a", "c2", 0, "embed", True),
        ("a", "c2", 1, "embed", True),
        ("a", "c2", 2, "retrieve", False),
        ("a", "c2", 3, "answer", False),
        ("b", "c1", 0, "retrieve", False),
        ("b", "c1", 1, "answer", False),
        ("b", "c2", 0, "retrieve", False),
        ("b", "c2", 1, "answer", False),
    ]
    stages = pd.DataFrame(
        calls, columns=["config_hash", "case_uid", "position", "stage", "shared"]
    ).assign(duration_s=1.0, wait_s=0.0, prompt_tokens=10, output_tokens=1)
    table = summarize_pipelines(runs, stages).stages
    assert list(zip(table["config"], table["stage"], strict=True)) == [
        ("a", "retrieve"),
        ("a", "answer"),
        ("b", "retrieve"),
        ("b", "answer"),
        (SHARED, "embed"),
    ]
    a = table.set_index(["config", "stage"])
    assert a.at[("a", "retrieve"), "calls_per_case"] == 1.0  # not charged the embed
    assert a.at[(SHARED, "embed"), "seconds_per_case"] == 2.0  # the run's total, once
    assert a.at[(SHARED, "embed"), "calls_per_case"] == 2.0


def test_a_stages_table_from_before_shared_was_kept_reads_as_nothing_shared():
    runs = pd.DataFrame(
        {
            "config_hash": ["a"],
            "case_uid": ["c1"],
            "pipeline": ["map_reduce"],
            "calls": [2],
            "wall_s": [1.0],
            "context_truncated_calls": [0],
        }
    )
    stages = pd.DataFrame(
        {
            "config_hash": ["a", "a"],
            "position": [1, 0],
            "stage": ["reduce", "map"],
            "shared": [None, None],
            "duration_s": [1.0, 2.0],
            "wait_s": [None, None],
            "prompt_tokens": [1, 1],
            "output_tokens": [1, 1],
        }
    )
    table = summarize_pipelines(runs, stages).stages
    assert list(table["stage"]) == ["map", "reduce"] and set(table["config"]) == {"a"}
