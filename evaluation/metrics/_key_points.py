"""``key_point_recall``: the share of a case's reference key points that the output
states (``case.metadata["key_points"]``, a list of short statements).

Matching rule (normalised token overlap): both texts are cut into content words
(``evaluation.content_words``: lower-cased, stop words dropped, plural "s" stripped,
"4.2" one word). A key point is present when the output contains every number of the
key point (a figure must be exact) and at least ``MIN_OVERLAP`` of its distinct content
words. The detail lists the key points missed. NaN for a case without key points.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.content_words import content_words
from evaluation.errors import MetricError
from evaluation.metrics._base import Scored
from evaluation.suites import Case

MIN_OVERLAP = 0.7
_NUMBER = re.compile(r"[0-9]")


def key_point_present(key_point: str, output_words: set[str]) -> bool:
    """The matching rule of the module docstring for one key point."""
    words = set(content_words(key_point))
    if not words:
        return False
    numbers = {w for w in words if _NUMBER.search(w)}
    if not numbers <= output_words:
        return False
    return len(words & output_words) >= MIN_OVERLAP * len(words)


def key_point_recall(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> Scored:
    """Share of the case's key points present in the output."""
    values = np.full(len(outputs), np.nan)
    details: list[str | None] = [None] * len(outputs)
    for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
        points = case.metadata.get("key_points")
        if not points:
            continue
        if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
            raise MetricError(
                f"key_point_recall: case '{case.id}': key_points must be a list of text"
            )
        said = set(content_words(output))
        missed = [p for p in points if not key_point_present(p, said)]
        values[i] = 1 - len(missed) / len(points)
        if missed:
            details[i] = "missed: " + "; ".join(missed)
    return Scored(values, tuple(details))
