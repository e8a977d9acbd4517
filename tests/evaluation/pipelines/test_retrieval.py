"""Retrieval against known embeddings: cosine order, k, threshold, zero vectors."""

from __future__ import annotations

import math

import pytest

from evaluation.pipelines import retrieve
from evaluation.pipelines._retrieval import CorpusChunk, corpus_chunks


def chunk(i: int) -> CorpusChunk:
    return CorpusChunk(f"d#{i}", "d", i, i + 1, f"text {i}")


VECTORS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0]]
CHUNKS = [chunk(i) for i in range(len(VECTORS))]


def test_best_k_by_cosine_similarity():
    hits = retrieve([2.0, 0.1], VECTORS, CHUNKS, k=2, min_similarity=-1.0)
    assert [h.chunk.id for h in hits] == ["d#0", "d#2"]
    assert hits[0].similarity == pytest.approx(2.0 / math.hypot(2.0, 0.1))
    assert hits[1].similarity == pytest.approx(2.1 / (math.sqrt(2) * math.hypot(2.0, 0.1)))


def test_threshold_drops_weak_matches_and_zero_vectors_match_nothing():
    hits = retrieve([1.0, 0.0], VECTORS, CHUNKS, k=5, min_similarity=0.5)
    assert [h.chunk.id for h in hits] == ["d#0", "d#2"]  # 1.0 and 0.707; 0 and -1 dropped
    everything = retrieve([1.0, 0.0], VECTORS, CHUNKS, k=10, min_similarity=-1.0)
    assert "d#4" not in [h.chunk.id for h in everything]  # the zero vector
    assert [h.chunk.id for h in everything][-1] == "d#3"  # cosine -1 still >= -1


def test_corpus_chunk_ids_name_document_and_position():
    chunks = corpus_chunks((("a", "one two three"), ("b", "four")), 2, 1, "tokens")
    assert [(c.id, c.text) for c in chunks] == [
        ("a#0", "one two"),
        ("a#1", "two three"),
        ("b#0", "four"),
    ]
