"""Checking an embedding answer before anyone computes a cosine from it."""

from __future__ import annotations

import math
from typing import Any

from evaluation.backends._http import MalformedStream, UnpooledEmbedding

UNPOOLED = (
    "the server answered one vector per token ({tokens} of {width} numbers for an input), "
    "not one per input: the model pools no embedding. Serve an embedding model (one that "
    "pools, such as nomic-embed-text), or a server that pools it (llama.cpp's llama-server "
    "--pooling mean)"
)


def checked_vectors(vectors: Any, count: int) -> list[list[float]]:
    """``count`` vectors of finite floats, all of one length; MalformedStream (a retryable
    server error) otherwise, so a short or ragged answer never pairs texts with the wrong
    vectors; UnpooledEmbedding (not retryable) for a vector per token, with the fix (it
    read "an embedding holds a non-number: ... not 'list'", retried on every case)."""
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
        raise MalformedStream(f"expected {count} embeddings, got {got}")
    out: list[list[float]] = []
    for vector in vectors:
        if not isinstance(vector, list) or not vector:
            raise MalformedStream("an embedding is not a non-empty list of numbers")
        if all(isinstance(x, list) and x for x in vector):  # a chat GGUF's, per token
            raise UnpooledEmbedding(UNPOOLED.format(tokens=len(vector), width=len(vector[0])))
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
