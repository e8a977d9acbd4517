"""Builders for long score rows, the shape the pipeline hands to evaluation.statistics."""

from __future__ import annotations

import numpy as np
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


def sweep_rows(seed: int = 11, configs: int = 5, cases: int = 55):
    """A sweep's score rows, one config per temperature: a 0/1 metric, a skewed latency
    and an ordinal one on more than 50 cases (Wilcoxon's normal approximation); and the
    configs' facts."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(configs):
        for i in range(cases):
            for metric, value in (
                ("acc", float(rng.random() < 0.5 + 0.04 * c)),
                ("latency_s", float(rng.lognormal(-3 + 0.05 * c, 0.8))),
                ("stars", float(rng.integers(1, 6))),
            ):
                rows.append(
                    {
                        "config": f"k{c}",
                        "case_id": f"c{i:03d}",
                        "sample_index": 0,
                        "group": None,
                        "metric": metric,
                        "value": value,
                    }
                )
    facts = pd.DataFrame({"config": [f"k{c}" for c in range(configs)]})
    facts["temperature"] = [0.1 * c for c in range(configs)]
    return pd.DataFrame(rows), facts


def sweep_analysis(scores, facts):
    """``analyze`` of :func:`sweep_rows`, power for a difference of 0.1 included."""
    from evaluation.statistics import analyze

    return analyze(
        scores,
        score_types={"acc": "binary", "latency_s": "continuous", "stars": "ordinal"},
        higher_is_better={"acc": True, "latency_s": False, "stars": True},
        facts=facts,
        delta=0.1,
    )
