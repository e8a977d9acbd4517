"""Checking an embedding answer before anyone computes a cosine from it."""

from __future__ import annotations

import math
from typing import Any

from evaluation.backends._http import MalformedStream


def checked_vectors(vectors: Any, count: int) -> list[list[float]]:
    """``count`` vectors of finite floats, all of one length; MalformedStream (a retryable
    server error) otherwise, so a short or ragged answer never pairs texts with the wrong
    vectors."""
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
        raise MalformedStream(f"expected {count} embeddings, got {got}")
    out: list[list[float]] = []
    for vector in vectors:
        if not isinstance(vector, list) or not vector:
            raise MalformedStream("an embedding is not a non-empty list of numbers")
        try:
            values = [float(x) for x in vector]
        except (TypeError, ValueError) as exc:
            raise MalformedStream(f"an embedding holds a non-number: {exc}") from exc
        if not all(math.isfinite(x) for x in values):
            raise MalformedStream("an embedding holds NaN or infinity")
        out.append(values)
    if len({len(v) for v in out}) > 1:
        raise MalformedStream("the embeddings differ in length")
    return out
