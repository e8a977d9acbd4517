"""Word-level differences of two outputs, for the side-by-side page: each side as
segments that are shared with the other side or its own ("only in A"), whitespace kept
as written, so the highlighted text reads as the model wrote it."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_TOKENS = re.compile(r"\s+|[^\s]+")

Segment = tuple[bool, str]  # (differs, text)

#: Longer outputs are shown without highlighting: the matcher is quadratic in words.
MAX_WORDS = 4000


def word_diff(a: str, b: str) -> tuple[list[Segment], list[Segment]]:
    """The segments of ``a`` and of ``b``; a word is "differs" when the other side lacks
    it at that place. Whitespace never counts as a difference."""
    left, right = _TOKENS.findall(a or ""), _TOKENS.findall(b or "")
    if len(left) + len(right) > 2 * MAX_WORDS:
        return [(False, a or "")], [(False, b or "")]
    words_a = [t for t in left if not t.isspace()]
    words_b = [t for t in right if not t.isspace()]
    same_a: set[int] = set()
    same_b: set[int] = set()
    matcher = SequenceMatcher(a=words_a, b=words_b, autojunk=False)
    for block in matcher.get_matching_blocks():
        same_a.update(range(block.a, block.a + block.size))
        same_b.update(range(block.b, block.b + block.size))
    return _segments(left, same_a), _segments(right, same_b)


def _segments(tokens: list[str], same: set[int]) -> list[Segment]:
    out: list[Segment] = []
    word = 0
    for token in tokens:
        differs = False
        if not token.isspace():
            differs = word not in same
            word += 1
        if out and (out[-1][0] == differs or token.isspace()):
            out[-1] = (out[-1][0], out[-1][1] + token)
        else:
            out.append((differs, token))
    return out
