"""Builders for long score rows, the shape the pipeline hands to evaluation.statistics."""

from __future__ import annotations

import pandas as pd


def long_rows(
    scores: dict[str, list[float] | list[list[float]]],
    *,
    metric: str = "acc",
    groups: list[str | None] | None = None,
) -> pd.DataFrame:
    """{config: per-case scores (or per-case lists of samples)} → long score rows."""
    rows = []
    for config, cases in scores.items():
        for i, case in enumerate(cases):
            samples = case if isinstance(case, list) else [case]
            for k, value in enumerate(samples):
                rows.append(
                    {
                        "config": config,
                        "case_id": f"c{i:03d}",
                        "sample_index": k,
                        "group": None if groups is None else groups[i],
                        "metric": metric,
                        "value": value,
                    }
                )
    return pd.DataFrame(rows)
