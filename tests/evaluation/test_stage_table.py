"""The time per stage: one row per config in the leaderboard's order (the stages run once
for the sweep last), one column per stage in the pipeline's order, wait shown only where
there was some; the report's table carries calls and tokens too."""

from __future__ import annotations

import pandas as pd

from evaluation.compare._stage_table import stage_lines, stage_pivot, stage_text
from evaluation.pipelines.summary import SHARED


def _stages() -> list[dict]:
    rows = [
        ("aaa", "embed", 0.10, 0.0, 1.0, 40.0, 0.0),
        ("aaa", "answer", 1.20, 0.30, 1.0, 900.0, 50.0),
        ("bbb", "embed", 0.11, float("nan"), 1.0, 40.0, 0.0),
        ("bbb", "answer", 2.40, 0.0, 1.0, 1800.0, 60.0),
        (SHARED, "embed corpus", 12.0, 0.0, 32.0, 9000.0, 0.0),
    ]
    columns = [
        "config",
        "stage",
        "seconds_per_case",
        "wait_s_per_case",
        "calls_per_case",
        "prompt_tokens",
        "output_tokens",
    ]
    return pd.DataFrame(rows, columns=columns).to_dict("records")


def test_one_row_per_config_in_the_leaderboards_order_and_one_column_per_stage():
    table = stage_pivot(_stages(), ["bbb", "aaa", "ccc"], {"aaa": "k=3", "bbb": "k=10"})
    assert list(table.columns) == ["config", "embed", "answer", "embed corpus"]
    assert table.to_dict("records") == [
        {"config": "k=10", "embed": "0.11", "answer": "2.40", "embed corpus": ""},
        {"config": "k=3", "embed": "0.10", "answer": "1.20 +0.30", "embed corpus": ""},
        {"config": SHARED, "embed": "", "answer": "", "embed corpus": "12.00"},
    ]
    assert len(stage_text(_stages(), ["bbb", "aaa"], {}).splitlines()) == 1 + 1 + 3


def test_the_reports_table_keeps_calls_and_tokens():
    lines = stage_lines(_stages(), ["aaa", "bbb"], {"aaa": "k=3", "bbb": "k=10"})
    assert lines[2] == "| config | embed | answer | embed corpus |"
    assert lines[4].startswith("| `aaa` k=3 | 0.10 s, 1.0 calls, 40/0 tok | 1.20 +0.30 s,")
    assert lines[5].startswith("| `bbb` k=10 |") and "calls/case" in lines[-1]
