"""SIMULATED embeddings: a hashed bag of content words, so that retrieval and semantic
similarity over them behave like the real thing without any model.

Each text is cut into its content words (``evaluation.content_words``: lower-cased words
of letters and digits, "4.2" and "1,250" one word each, stop words dropped, a plural "s"
stripped so "revenues" is "revenue"). Each of them adds ``1 + ln(count)`` to one of
``EMBED_DIM`` coordinates with a sign, both drawn from sha256 of (model, word); the
vector is then scaled to length 1. So texts sharing content words have a higher cosine
(two texts with the same words: 1.0), texts sharing none are near 0 (hash collisions
give ±0.05 or so), and each embedding model name gives its own projection. A text
without content words gets a unit vector drawn from sha256 of (model, text). Same
input, same vector, always.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from functools import lru_cache

import numpy as np

from evaluation.content_words import content_words

EMBED_DIM = 384
# Embedding models every simulated host lists (besides the models its spec names), so a
# spec written for Ollama's nomic-embed-text runs on the simulated backend unchanged.
SIM_EMBED_MODELS = ("nomic-embed-text", "sim-embed")


def simulated_embedding(model: str, text: str) -> list[float]:
    """The SIMULATED unit vector of ``text`` under embedding model ``model``."""
    counts = Counter(content_words(text))
    vector = np.zeros(EMBED_DIM)
    for word, count in counts.items():
        index, sign = _coordinate(model, word)
        vector[index] += sign * (1.0 + math.log(count))
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
        vector = np.random.default_rng(int.from_bytes(digest)).standard_normal(EMBED_DIM)
        norm = float(np.linalg.norm(vector))
    return (vector / norm).tolist()


@lru_cache(maxsize=1 << 16)
def _coordinate(model: str, word: str) -> tuple[int, float]:
    digest = hashlib.sha256(f"{model}\0{word}".encode()).digest()
    return int.from_bytes(digest[:4]) % EMBED_DIM, 1.0 if digest[4] & 1 else -1.0
