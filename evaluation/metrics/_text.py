"""Answer-matching metrics: normalised exact match, contains, regex, output length.

Normalisation follows the SQuAD evaluation script: lowercase, delete punctuation, delete
the articles a/an/the, collapse whitespace. "Punctuation" is every character that is
neither a word character nor whitespace (plus "_"), so curly quotes and other Unicode
punctuation go too. A reference made only of articles (a multiple-choice "A") would
normalise to nothing, so for such a reference both sides keep their articles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.errors import MetricError
from evaluation.metrics._echo import answer_cut, echo_share
from evaluation.suites import Case

_PUNCTUATION = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_text(text: str, *, drop_articles: bool = True) -> str:
    """SQuAD-style normalisation (see the module docstring)."""
    text = _PUNCTUATION.sub("", text.lower())
    if drop_articles:
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _normalized_targets(case: Case) -> list[tuple[str, bool]]:
    """Each target normalised, with whether its articles were kept."""
    targets = []
    for target in case.targets:
        normalized = normalize_text(target)
        if normalized or not normalize_text(target, drop_articles=False):
            targets.append((normalized, False))
        else:
            targets.append((normalize_text(target, drop_articles=False), True))
    return targets


def match_explanation(
    output: str, case: Case, *, contains: bool, prompt: str | None = None
) -> str | None:
    """What ``exact_match`` (or ``contains``) compared, after normalisation, and the
    outcome, in one sentence; None when the case has nothing to compare with. With the
    case's ``prompt`` (``Case.prompt_text``) it explains what scoring compared: the answer part,
    after a turn the output started of its own and an echo of the prompt were cut, or
    nothing when it only asks a question of its own (evaluation/metrics/_echo.py), and
    says so."""
    targets = _normalized_targets(case)
    if not targets:
        return None
    cut = ""
    found = answer_cut(output, prompt) if prompt is not None else None
    if found is not None and (answer := found.answer) != output:
        if found.question is not None:
            cut += (
                f"the output only asks a question of its own («{found.question[:40]}»), no answer; "
            )
            output = answer
        elif (turn := found.turn) is not None:
            opening = output[turn:].strip().splitlines()[0][:40]
            cut += f"the output's own next turn (from «{opening}») was cut first; "
            output = output[:turn].strip()
        if answer != output:
            share = echo_share(output, prompt)
            cut += f"an echo of the prompt ({share:.0%} of the output's words) was cut first; "
        output = answer
    how = "contains, as whole words," if contains else "equals"
    shown = []
    for target, kept_articles in targets:
        candidate = normalize_text(output, drop_articles=not kept_articles)
        hit = f" {target} " in f" {candidate} " if contains else target == candidate
        shown.append(f"«{target}»" + (" (match)" if hit else ""))
        if hit:
            break
    what = "answer part" if cut else "output"
    return (
        f"{cut}normalised {what} «{normalize_text(output)}» {how} a normalised reference? "
        f"compared with {', '.join(shown)} (lowercased; punctuation and a/an/the dropped)"
    )


def _match(outputs: Sequence[str], cases: Sequence[Case], contains: bool) -> np.ndarray:
    scores = np.full(len(outputs), np.nan)
    for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
        targets = _normalized_targets(case)
        if not targets:
            continue
        plain = normalize_text(output)
        with_articles = None
        hit = False
        for target, kept_articles in targets:
            if kept_articles:
                with_articles = with_articles or normalize_text(output, drop_articles=False)
                candidate = with_articles
            else:
                candidate = plain
            # Padding with spaces makes "contains" match whole tokens only.
            hit = f" {target} " in f" {candidate} " if contains else target == candidate
            if hit:
                break
        scores[i] = float(hit)
    return scores


def exact_match(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    """1.0 when the normalised output equals a normalised reference (else the label)."""
    return _match(outputs, cases, contains=False)


def contains(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    """1.0 when a normalised reference occurs in the normalised output as whole tokens."""
    return _match(outputs, cases, contains=True)


def regex_match(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    """1.0 when ``case.metadata["answer_regex"]`` matches anywhere in the raw output
    (``re.search``, case-sensitive unless the pattern says ``(?i)``); NaN without one."""
    scores = np.full(len(outputs), np.nan)
    for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
        pattern = case.metadata.get("answer_regex")
        if pattern is None:
            continue
        try:
            scores[i] = float(re.search(pattern, output) is not None)
        except (re.error, TypeError) as exc:
            message = f"regex: case '{case.id}' has an invalid answer_regex: {exc}"
            raise MetricError(message) from exc
    return scores


def output_length(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    """Number of whitespace-separated words in the output."""
    return np.fromiter((len(output.split()) for output in outputs), np.float64, len(outputs))
