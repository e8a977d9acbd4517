"""Content words: what carries a text's meaning for the simulated embeddings and for
key-point matching.

A text is lower-cased and cut into words of letters and digits, a number with its
decimal point or thousands separators staying one word ("4.2", "1,250.5"); the stop
words below are dropped, and a plural "s" is stripped from words longer than three
letters that do not end in "ss" ("revenues" is "revenue", "loss" stays).
"""

from __future__ import annotations

import re

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
    """The content words of ``text``, in order (see the module docstring)."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words
