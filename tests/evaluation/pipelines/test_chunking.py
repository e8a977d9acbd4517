"""Chunker properties: chunks cover the document in order, consecutive chunks overlap by
exactly ``overlap`` units, no chunk is empty, none is longer than ``size``."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.pipelines import chunk_text
from evaluation.pipelines._chunking import token_spans

documents = st.lists(
    st.text(alphabet="abc .,\n\t", min_size=1, max_size=12), min_size=0, max_size=60
).map("".join)


@st.composite
def sizes(draw):
    size = draw(st.integers(1, 40))
    return size, draw(st.integers(0, size - 1))


def units(text: str, unit: str) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(len(text))] if unit == "characters" else token_spans(text)


@settings(max_examples=300, deadline=None)
@given(documents, sizes(), st.sampled_from(["tokens", "characters"]))
def test_chunks_cover_in_order_with_exact_overlap(text, size_overlap, unit):
    size, overlap = size_overlap
    chunks = chunk_text(text, size, overlap, unit)
    spans = units(text, unit)
    if not spans:
        assert chunks == []
        return
    # every chunk is the document's text between its offsets, never empty
    assert all(c.text == text[c.start : c.end] and c.text for c in chunks)
    if unit == "tokens":
        assert all(not c.text[0].isspace() and not c.text[-1].isspace() for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # as unit indices: the first chunk starts at unit 0, the last ends at the last unit
    firsts = [next(i for i, s in enumerate(spans) if s[0] == c.start) for c in chunks]
    lasts = [next(i for i, s in enumerate(spans) if s[1] == c.end) for c in chunks]
    assert firsts[0] == 0 and lasts[-1] == len(spans) - 1
    for first, last in zip(firsts, lasts, strict=True):
        assert 1 <= last - first + 1 <= size  # size respected
    pairs = list(zip(firsts, lasts, strict=True))
    for (f0, l0), (f1, l1) in itertools.pairwise(pairs):
        assert f1 > f0 and l1 > l0  # in order, always advancing
        assert l0 - f1 + 1 == overlap  # exact overlap: every chunk but the last is full
        assert l0 - f0 + 1 == size


def test_tokens_are_whitespace_words_and_text_is_kept():
    text = "Revenue rose 12%.\nNet income: EUR 3.4 million, up from 2.9."
    chunks = chunk_text(text, 4, 1, "tokens")
    assert [c.text for c in chunks] == [
        "Revenue rose 12%.\nNet",
        "Net income: EUR 3.4",
        "3.4 million, up from",
        "from 2.9.",
    ]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        chunk_text("a b c", 2, 2)
    with pytest.raises(ValueError):
        chunk_text("a b c", 0, 0)
