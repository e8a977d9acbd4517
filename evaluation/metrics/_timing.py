"""Per-generation timings, read from the generation results (NaN where not reported)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.suites import Case


def timing(read: Callable[[GenerationResult], float | None]) -> Callable[..., np.ndarray]:
    """A per-case scorer reading one number from each result; all NaN without results."""

    def score(
        outputs: Sequence[str],
        cases: Sequence[Case],
        results: Sequence[GenerationResult] | None,
        labels: Sequence[str] | None,
    ) -> np.ndarray:
        if results is None:
            return np.full(len(outputs), np.nan)
        values = (read(result) for result in results)
        return np.fromiter(
            (np.nan if value is None else value for value in values), np.float64, len(results)
        )

    return score


def latency_s(result: GenerationResult) -> float | None:
    return result.latency_s


def ttft_s(result: GenerationResult) -> float | None:
    return result.ttft_s


def tokens_per_s(result: GenerationResult) -> float | None:
    return result.tokens_per_s
