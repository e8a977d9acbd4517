"""Scoring stored generations: from generation rows to one value per (generation, metric)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.backends.base import GenerationResult
from evaluation.metrics import Metric
from evaluation.suites import Suite

TIMING_METRICS = frozenset({"latency_s", "ttft_s", "tokens_per_s"})


def results_from_rows(rows: pd.DataFrame) -> list[GenerationResult]:
    """Rebuild GenerationResults from stored rows (what timing metrics read)."""
    return [
        GenerationResult(
            text=row.output,
            done_reason=row.done_reason or "",
            latency_s=_float(row.latency_s),
            ttft_s=_float(row.ttft_s, default=None),
            prompt_eval_count=int(row.prompt_eval_count or 0),
            eval_count=int(row.eval_count or 0),
            eval_duration_ns=int(row.eval_duration_ns or 0),
            total_duration_ns=int(row.total_duration_ns or 0),
            simulated=bool(row.simulated),
        )
        for row in rows.itertuples(index=False)
    ]


def _float(value: object, default: float | None = float("nan")) -> float | None:
    return default if value is None or pd.isna(value) else float(value)


def score_generations(
    generations: pd.DataFrame, suite: Suite, metrics: Sequence[Metric]
) -> dict[str, np.ndarray]:
    """Scores of the successful generations in ``generations`` (rows of
    ``generations_frame``), aligned with its rows; failed generations are not scored."""
    by_id = {case.id: case for case in suite.cases}
    cases = [by_id[case_id] for case_id in generations["case_id"]]
    outputs = generations["output"].fillna("").tolist()
    needs_results = any(m.name in TIMING_METRICS for m in metrics)
    results = results_from_rows(generations) if needs_results else None
    return {
        m.name: np.asarray(m.score(outputs, cases, results, labels=suite.labels or None))
        for m in metrics
    }
