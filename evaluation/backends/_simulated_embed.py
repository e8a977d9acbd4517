"""SIMULATED embeddings: a hashed bag of content words, so that retrieval and semantic
similarity over them behave like the real thing without any model.

Each text is lower-cased and cut into words (letters and digits; "4.2" and "1,250" stay
one word); stop words are dropped and a plural "s" is stripped ("revenues" is
"revenue"). Each remaining word adds ``1 + ln(count)`` to one of ``EMBED_DIM``
coordinates with a sign, both drawn from sha256 of (model, word); the vector is then
scaled to length 1. So texts sharing content words have a higher cosine (two texts with
the same words: 1.0), texts sharing none are near 0 (hash collisions give ±0.05 or so),
and each embedding model name gives its own projection. A text without content words
gets a unit vector drawn from sha256 of (model, text). Same input, same vector, always.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from functools import lru_cache

import numpy as np

EMBED_DIM = 384
# Embedding models every simulated host lists (besides the models its spec names), so a
# spec written for Ollama's nomic-embed-text runs on the simulated backend unchanged.
SIM_EMBED_MODELS = ("nomic-embed-text", "sim-embed")

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been
before being below between both but by can did do does doing down during each
few for from further had has have having he her here hers him his how i if in
into is it its itself just me more most my no nor not now of off on once only or
other our ours out over own same she should so some such than that the their
theirs them then there these they this those through to too under until up very
was we were what when where which while who whom why will with would you your
yours
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def content_words(text: str) -> list[str]:
    """The words that carry the embedding, in order (see the module docstring)."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


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
