"""Echo of the prompt: what part of an output repeats the input, and what is left.

A base model (Gemma-3-270M on qa-short) sometimes repeats its prompt: "Answer: Apollo 11
was the first crewed mission to land on the Moon..." contains the reference only because
the passage does. The rule: a stretch of the output that copies the case's text (its
system prompt and every message; words are runs of letters and digits, compared
lower-cased) in order is an echo when it holds ``ECHO_RUN_WORDS`` consecutive words of
the prompt unchanged, or ``ECHO_EDITED_WORDS`` copied words in all. Small edits do not
end a copy: a word dropped, added or changed (up to ``MAX_EDIT_WORDS`` in a row)
continues it when the next ``RESYNC_WORDS`` words (or all that is left of the output)
follow the prompt again, so "aboard Saturn V rocket" for "aboard a Saturn V rocket"
stays part of the copied sentence instead of earning credit. A short clause retold with
its words changed ("the Blue Nile originates from Lake Tana in Ethiopia" for "... begins
at Lake Tana in Ethiopia": 8 words copied, at most 4 in a row) is an answer in the
passage's words, not an echo. The metrics that
compare an output with references or labels score the **answer part**: the output with
its echoes cut out (an output with none is scored as it is). "Answer: Saturn V rocket"
followed by a repeated instruction keeps its answer; a repeated passage scores nothing.
An output is **echoing** when echoes make up at least ``ECHO_SHARE`` of its words;
``echoes_prompt`` scores that (1.0 / 0.0) for the leaderboard's flag.

Restating the question is answering, not echoing: a copy that lies within the prompt's
trailing question (its last sentence, when the prompt ends with "?") is never cut, so
"Michael Collins remained in lunar orbit while the others landed." for "Who remained in
lunar orbit while the others landed?" is an answer. So is quoting the sentence that holds
the answer (SmolLM2: "The crossing takes 50 minutes in calm weather."): a copy within one
sentence of the prompt is a quote, except of its first sentence (the instruction or the
system prompt's first words, which no answer quotes). Only copying the instructions, the
template or the input at length (across a sentence's end) is echo.

Eight words is longer than the short answers a QA suite asks for, so copying an answer
phrase from a passage is never cut; a summary that copies whole sentences of its source
loses them, as it should lose chrF credit for them.

The answer part also **ends where the output starts a turn of its own**: a base model
that has answered goes on writing the conversation (Gemma-3-270M on qa-kestrel-ferry-2:
"Answer: 6 euros.\n\nQuestion: What is the cost of a car?  [/INST]\n\nAnswer: 24 euros
including the driver"), and the reference in the question-and-answer pair it invented
must not earn credit; harnesses stop such turns with stop sequences (lm-eval-harness:
``until: ["\n\n", "Question:"]``). A turn starts at a line that begins with one of
``TURN_MARKERS`` (``Question:``, ``Q:``, ``[INST]``, ``[/INST]``, ``<start_of_turn>``,
``User:``, ``Human:``; case as written) after some answer text: a word before it that is
not an echo. A line "Question: ..." that opens the output, or follows only a repeated
prompt, is a restated question and stays; "Answer:" is the answer's own label, never a
turn.

An output that is **only a question of its own** gives no answer (its answer part is
empty): a base model continuing the prompt's form writes the next user turn instead of
answering (Gemma-3-270M, "What is 2 + 2? Answer with a number.": "\n\nWhat is 2 + 4?
Answer with a", which held the reference "4"; "What is the capital of Egypt?  [/INST]").
That is an output of one line (blank lines aside; a turn marker opening it is skipped)
whose first sentence ends with "?" and is followed on the line by nothing but a turn
marker (whole, or cut short at the output's end: "[/INST"), or, when the question opens
with the first two words of a question of the prompt (its form: "What is", "How many"),
by nothing or the first words of what follows that question in the prompt ("Answer with
a"). A question with an answer after it ("What is 2 + 2? It is 4.", "Paris? I think
so."), or on a line of its own, keeps its credit.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from evaluation.suites import Case

ECHO_RUN_WORDS = 8
ECHO_EDITED_WORDS = 12  # copied words that make an echo through edits
ECHO_SHARE = 0.5
MAX_EDIT_WORDS = 2  # words dropped, added or changed in a row inside one copy
RESYNC_WORDS = 3  # words that must follow the prompt again after an edit
_SEED = 3  # a copy starts where this many words follow the prompt
_WORD = re.compile(r"\w+")
TURN_MARKERS = ("Question:", "Q:", "[INST]", "[/INST]", "<start_of_turn>", "User:", "Human:")
_TURN = re.compile(r"^[ \t]*(?:" + "|".join(map(re.escape, TURN_MARKERS)) + ")", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?:\n]")
_SENTENCE_BREAK = re.compile(r"[.!?](?=\s)|\n")
# (output words, prompt words) skipped by one edit, the likeliest first
_EDITS = sorted(
    ((da, db) for da in range(MAX_EDIT_WORDS + 1) for db in range(MAX_EDIT_WORDS + 1) if da or db),
    key=lambda e: (max(e), sum(e)),
)


def _words(text: str) -> list[tuple[str, int, int]]:
    """(lower-cased word, start, end) of each run of letters and digits ("[INST]Read"
    is two words)."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _question_start(prompt: str, n_words: int) -> int:
    """Index of the first word of the prompt's trailing question (``n_words`` when the
    prompt does not end with one): its last sentence, when that ends with "?"."""
    body = prompt.rstrip()
    if not body.endswith("?"):
        return n_words
    starts = [m.end() for m in _SENTENCE_END.finditer(body, 0, len(body) - 1)]
    return n_words - len(_WORD.findall(body[starts[-1] if starts else 0 :]))


def _sentence_of_words(prompt: str) -> list[int]:
    """For each word of ``prompt``, the index of the sentence it is in (sentences end at
    ".", "!" or "?" before a space, and at a line break)."""
    ends = [m.start() for m in _SENTENCE_BREAK.finditer(prompt)]
    sentence, k, out = 0, 0, []
    for m in _WORD.finditer(prompt):
        while k < len(ends) and ends[k] < m.start():
            k += 1
            sentence = k
        out.append(sentence)
    return out


def _copy_end(out: list[str], prompt: list[str], i: int, j: int) -> tuple[int, int, int]:
    """Follow the copy that starts at output word ``i`` and prompt word ``j``, through
    small edits: (output end, prompt end, words copied, longest run of them unchanged)."""
    a, b, equal, end, prompt_end, run, longest = i, j, 0, i, j, 0, 0
    while a < len(out):
        if b < len(prompt) and out[a] == prompt[b]:
            a, b, equal, end, run = a + 1, b + 1, equal + 1, a + 1, run + 1
            prompt_end = b
            longest = max(longest, run)
            continue
        run = 0
        for da, db in _EDITS:
            rest = out[a + da : a + da + RESYNC_WORDS]
            whole = len(rest) == RESYNC_WORDS or a + da + len(rest) == len(out)
            if rest and whole and prompt[b + db : b + db + len(rest)] == rest:
                a, b = a + da, b + db
                break
        else:
            break
    return end, prompt_end, equal, longest


class _PromptIndex(NamedTuple):
    """What the echo rule needs of a prompt, the same for every output to it: its words,
    where its trailing question starts, each word's sentence, and where each run of
    ``_SEED`` words starts in it."""

    words: list[str]
    question: int
    sentences: list[int]
    where: dict[tuple[str, ...], list[int]]


# A case's prompt is analysed once, not once per config and sample that answered it (a
# 1,500-word prompt: ~3.5 ms of CPU a generation before). Kept up to this many prompt
# words in all (~0.3 KB a word: ~17 MiB), until ``forget_prompts`` (a run's scoring is
# done); prompts past it are analysed each time, not kept.
PROMPT_CACHE_WORDS = 60_000
_prompt_cache: dict[str, _PromptIndex] = {}
_prompt_cache_words = [0]


def forget_prompts() -> None:
    """Drop the prompts' analyses kept (their memory back for what follows scoring)."""
    _prompt_cache.clear()
    _prompt_cache_words[0] = 0


def _prompt_index(prompt: str) -> _PromptIndex:
    index = _prompt_cache.get(prompt)
    if index is not None:
        return index
    words = [w for w, _, _ in _words(prompt)]
    where: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j in range(len(words) - _SEED + 1):
        where[tuple(words[j : j + _SEED])].append(j)
    index = _PromptIndex(
        words, _question_start(prompt, len(words)), _sentence_of_words(prompt), dict(where)
    )
    if _prompt_cache_words[0] + len(words) <= PROMPT_CACHE_WORDS:
        _prompt_cache[prompt] = index
        _prompt_cache_words[0] += len(words)
    return index


def _echo_spans(
    out: list[str],
    prompt: list[str],
    question: int,
    sentences: list[int],
    where: dict[tuple[str, ...], list[int]],
) -> list[tuple[int, int]]:
    """(start, end) word ranges of the output that are echoes, left to right; ``where``:
    where each run of ``_SEED`` words starts in ``prompt``."""
    spans, i = [], 0
    while i <= len(out) - _SEED:
        best = i
        for j in where.get(tuple(out[i : i + _SEED]), ()):
            end, prompt_end, equal, longest = _copy_end(out, prompt, i, j)
            echo = longest >= ECHO_RUN_WORDS or equal >= ECHO_EDITED_WORDS
            quote = sentences[j] == sentences[prompt_end - 1] != sentences[0]
            if echo and not quote and j < question and end > best:
                best = end
        if best > i:
            spans.append((i, best))
            i = best
        else:
            i += 1
    return spans


def echoed_words(output: str, prompt: str) -> tuple[list[tuple[str, int, int]], list[bool]]:
    """The output's words and, for each, whether it lies in an echo."""
    words = _words(output)
    p = _prompt_index(prompt)
    echoed = [False] * len(words)
    spans = _echo_spans([w for w, _, _ in words], p.words, p.question, p.sentences, p.where)
    for start, end in spans:
        echoed[start:end] = [True] * (end - start)
    return words, echoed


def echo_share(output: str, prompt: str) -> float:
    """Share of the output's words that lie in echoed runs (0.0 for an empty output)."""
    words, echoed = echoed_words(output, prompt)
    return sum(echoed) / len(words) if words else 0.0


def turn_start(output: str, prompt: str) -> int | None:
    """Where the output starts a turn of its own (the start of the first line that begins
    with a turn marker after a word that is not an echo), or None when it does not."""
    markers = list(_TURN.finditer(output))
    if not markers:
        return None
    words, echoed = echoed_words(output, prompt)
    answered = [end for (_, _, end), cut in zip(words, echoed, strict=True) if not cut]
    for marker in markers:
        if answered and answered[0] <= marker.start():
            return marker.start()
    return None


_ASKS = re.compile(r"(?:^|(?<=[.!?:\n]))[^.!?:\n]*\?")  # a sentence that asks
_OPENS_ASKING = re.compile(r"[^.!?\n]*\?")
_FORM_WORDS = 2  # the question's first words that make the prompt's form


def _prompt_questions(prompt: str) -> list[tuple[list[str], list[str]]]:
    """Each question of the prompt: its first ``_FORM_WORDS`` words, and the words of
    its line after it ("answer with a number"), lower-cased."""
    questions = []
    for m in _ASKS.finditer(prompt):
        form = [w.lower() for w in _WORD.findall(m.group(0))][:_FORM_WORDS]
        line_end = prompt.find("\n", m.end())
        after = prompt[m.end() : line_end if line_end >= 0 else len(prompt)]
        if form:
            questions.append((form, [w.lower() for w in _WORD.findall(after)]))
    return questions


def _ends_turn(text: str) -> bool:
    """Whether ``text`` is a turn marker, or one cut short ("[/INST")."""
    return len(text) >= 2 and any(marker.startswith(text) for marker in TURN_MARKERS)


def invented_question(output: str, prompt: str) -> str | None:
    """The question an output asks of its own instead of answering (see the module
    docstring), else None."""
    line = output.strip()
    if "\n" in line:
        return None
    if (opening := _TURN.match(line)) is not None:
        line = line[opening.end() :].strip()
    asked = _OPENS_ASKING.match(line)
    if asked is None:
        return None
    question, rest = asked.group(0).strip(), line[asked.end() :].strip()
    if _ends_turn(rest):
        return question
    words = [w.lower() for w in _WORD.findall(question)]
    rest_words = [w.lower() for w in _WORD.findall(rest)]
    for form, after in _prompt_questions(prompt):
        if words[: len(form)] == form and after[: len(rest_words)] == rest_words:
            return question
    return None


class AnswerCut(NamedTuple):
    """What :func:`answer_cut` found: the answer part, and what was cut to get it."""

    answer: str
    question: str | None  # the question the output asks of its own (answer "")
    turn: int | None  # where the output starts a turn of its own


def answer_part(output: str, prompt: str) -> str:
    """``output`` up to the turn it starts of its own, without its echoed runs
    (unchanged when it has neither); nothing when it only asks a question of its own."""
    return answer_cut(output, prompt).answer


def answer_cut(output: str, prompt: str) -> AnswerCut:
    """The answer part (:func:`answer_part`) with the question it asks of its own and
    where its own turn starts, each found once (``match_explanation`` asked for the
    question again, after ``answer_part`` had)."""
    question = invented_question(output, prompt)
    if question is not None:
        return AnswerCut("", question, None)
    turn = turn_start(output, prompt)
    if turn is not None:
        output = output[:turn].strip()
    return AnswerCut(_without_echoes(output, prompt), None, turn)


def _without_echoes(output: str, prompt: str) -> str:
    """``output`` with its echoed runs of ``prompt`` cut out."""
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
    return [answer_part(o, c.prompt_text) for o, c in zip(outputs, cases, strict=True)]


def echoes_prompt(outputs: Sequence[str], cases: Sequence[Case], results, labels):
    """1.0 when echoed runs make up at least ``ECHO_SHARE`` of the output's words."""
    import numpy as np

    return np.asarray(
        [
            float(echo_share(o, c.prompt_text) >= ECHO_SHARE)
            for o, c in zip(outputs, cases, strict=True)
        ]
    )
