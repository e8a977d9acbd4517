"""Splitting a document into overlapping chunks.

A chunk is a slice of the document (its text is ``document[start:end]``), so chunks can
be traced back to where they came from. Sizes are counted in ``tokens`` or
``characters``. A token here is a run of non-space characters (a word with its
punctuation): no tokenizer is needed and, since real tokenizers split words further, a
chunk of N such tokens is at least N model tokens. Consecutive chunks share exactly
``overlap`` units; the last chunk ends at the end of the document and is never one that
the previous chunk already covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Unit = Literal["tokens", "characters"]
UNITS: tuple[Unit, ...] = ("tokens", "characters")

_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: ``index`` in order, character span ``[start, end)``."""

    index: int
    start: int
    end: int
    text: str


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the tokens of ``text`` (runs of non-space characters)."""
    return [m.span() for m in _TOKEN.finditer(text)]


def estimate_tokens(text: str) -> int:
    """A lower bound of the model tokens of ``text``: its whitespace-separated words."""
    return sum(1 for _ in _TOKEN.finditer(text))


def chunk_starts(length: int, size: int, overlap: int) -> list[int]:
    """Unit offsets where chunks begin: every ``size - overlap`` units, until a chunk
    reaches ``length``."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size}, {overlap}")
    starts = [0]
    while starts[-1] + size < length:
        starts.append(starts[-1] + size - overlap)
    return starts


def chunk_text(text: str, size: int, overlap: int = 0, unit: Unit = "tokens") -> list[Chunk]:
    """``text`` cut into chunks of at most ``size`` units, consecutive ones sharing
    ``overlap`` units. A document with no tokens (or no characters) gives no chunk."""
    spans = [(i, i + 1) for i in range(len(text))] if unit == "characters" else token_spans(text)
    if not spans:
        return []
    chunks = []
    for index, first in enumerate(chunk_starts(len(spans), size, overlap)):
        last = min(first + size, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(Chunk(index, start, end, text[start:end]))
    return chunks
