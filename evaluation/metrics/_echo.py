"""Echo of the prompt: what part of an output repeats the input, and what is left.

A base model (Gemma-3-270M on qa-short) mostly repeats its prompt: "Answer: Apollo 11
was the first crewed mission to land on the Moon..." contains the reference only because
the passage does. The rule: a run of at least ``ECHO_RUN_WORDS`` consecutive words of the
output that also occur consecutively in the case's text (its system prompt and every
message; words are runs of letters and digits, compared lower-cased) is an echo. The metrics that
compare an output with references or labels score the **answer part**: the output with
its echoed runs cut out (an output with no such run is scored as it is). "Answer: Saturn V
rocket" followed by a repeated instruction keeps its answer; a repeated passage scores
nothing. An output is **echoing** when echoed runs make up at least ``ECHO_SHARE`` of its
words; ``echoes_prompt`` scores that (1.0 / 0.0) for the leaderboard's flag.

Eight words is longer than the short answers a QA suite asks for, so copying an answer
phrase from a passage is never cut; a summary that copies whole sentences of its source
loses them, as it should lose chrF credit for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evaluation.suites import Case

ECHO_RUN_WORDS = 8
ECHO_SHARE = 0.5
_WORD = re.compile(r"\w+")


def case_text(case: Case) -> str:
    """Everything the model was given for ``case``: its system prompt and messages."""
    parts = [case.system or ""]
    if isinstance(case.input, str):
        parts.append(case.input)
    else:
        parts.extend(m.content for m in case.input)
    return "\n".join(parts)


def _words(text: str) -> list[tuple[str, int, int]]:
    """(lower-cased word, start, end) of each run of letters and digits ("[INST]Read"
    is two words)."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def echoed_words(output: str, prompt: str) -> tuple[list[tuple[str, int, int]], list[bool]]:
    """The output's words and, for each, whether it lies in an echoed run."""
    words = _words(output)
    n = ECHO_RUN_WORDS
    prompt_words = [w for w, _, _ in _words(prompt)]
    grams = {tuple(prompt_words[i : i + n]) for i in range(len(prompt_words) - n + 1)}
    echoed = [False] * len(words)
    if not grams:
        return words, echoed
    keys = [w for w, _, _ in words]
    for i in range(len(words) - n + 1):
        if tuple(keys[i : i + n]) in grams:
            echoed[i : i + n] = [True] * n
    return words, echoed


def echo_share(output: str, prompt: str) -> float:
    """Share of the output's words that lie in echoed runs (0.0 for an empty output)."""
    words, echoed = echoed_words(output, prompt)
    return sum(echoed) / len(words) if words else 0.0


def answer_part(output: str, prompt: str) -> str:
    """``output`` without its echoed runs (unchanged when it has none)."""
    words, echoed = echoed_words(output, prompt)
    if not any(echoed):
        return output
    kept, position, previous_cut = [], 0, False
    for (_, start, end), cut in zip(words, echoed, strict=True):
        if cut:
            if not previous_cut:  # the text between two echoed words goes with them
                kept.append(output[position:start])
            position = end
        previous_cut = cut
    kept.append(output[position:])
    return " ".join(" ".join(kept).split())


def answer_parts(outputs: Sequence[str], cases: Sequence[Case]) -> list[str]:
    return [answer_part(o, case_text(c)) for o, c in zip(outputs, cases, strict=True)]


def echoes_prompt(outputs: Sequence[str], cases: Sequence[Case], results, labels):
    """1.0 when echoed runs make up at least ``ECHO_SHARE`` of the output's words."""
    import numpy as np

    return np.asarray(
        [
            float(echo_share(o, case_text(c)) >= ECHO_SHARE)
            for o, c in zip(outputs, cases, strict=True)
        ]
    )
