"""Classification metrics: accuracy and macro-F1 over labels extracted from outputs.

The predicted label is read as an answer: the labels that occur as whole words in the
output (the answer part, without what it repeats of the prompt), both normalised like
``normalize_text`` but keeping articles (so a label "A" survives). Exactly one label
(however often it occurs) is the prediction; several different labels ("Billing,
technical, account.") are ``AMBIGUOUS``, which matches no gold label and is a miss;
no label gives the normalised output itself (also a miss). The rule is lenient on
purpose: small models answer in sentences ("The category is billing."), so a label
mentioned anywhere, with no other, is the answer, and an output that merely uses a
label word ("To change your email address on your account") counts as naming it. Each
case's detail (shown in ``evalflow view``) says which labels the output named.
The label set is the suite's (``labels=``), else the gold labels of the cases scored
plus any ``case.metadata["labels"]``.

Macro-F1 is a corpus value (``sklearn.metrics.f1_score(average="macro")``) over the
classes that occur as gold labels or as predicted known labels; a free-text prediction
that names no label counts as a miss, not as a class of its own. Per case it gives the
case's correctness (as accuracy), so paired statistics have something to pair; the
corpus value is the headline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.metrics._base import Scored
from evaluation.metrics._text import normalize_text
from evaluation.suites import Case


def _label_set(cases: Sequence[Case], labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        found = list(labels)
    else:
        found = [case.label for case in cases if case.label is not None]
        for case in cases:
            found.extend(case.metadata.get("labels", ()))
    normalized = {normalize_text(label, drop_articles=False) for label in found}
    return sorted(normalized - {""}, key=lambda label: (-len(label), label))


def _label_pattern(label_set: Sequence[str]) -> re.Pattern[str] | None:
    if not label_set:
        return None
    # Longest first, so that at one position "very good" wins over "good".
    alternatives = "|".join(re.escape(label) for label in label_set)
    return re.compile(rf"(?<!\S)(?:{alternatives})(?!\S)")


def extract_label(output: str, labels: Sequence[str]) -> str:
    """The label an output names (see the module docstring for the rule)."""
    return _extract(output, _label_pattern(_label_set((), labels)))


AMBIGUOUS = "<ambiguous: several labels>"


def _extract(output: str, pattern: re.Pattern[str] | None) -> str:
    text = normalize_text(output, drop_articles=False)
    found = _named(text, pattern)
    if len(found) > 1:
        return AMBIGUOUS
    return found.pop() if found else text


def _named(text: str, pattern: re.Pattern[str] | None) -> set[str]:
    """The labels a normalised output names as whole words, anywhere in it."""
    return set(pattern.findall(text)) if pattern is not None else set()


def _why(output: str, gold: str, pattern: re.Pattern[str] | None, label_set: list[str]) -> str:
    """Why a case scored as it did, in one sentence, for the view."""
    named = sorted(_named(normalize_text(output, drop_articles=False), pattern))
    rule = "a label counts when it occurs as whole words anywhere in the output"
    if len(named) == 1:
        verdict = "the gold label" if named[0] == gold else f"not the gold «{gold}»"
        return f"the output names one label, «{named[0]}», and no other ({rule}): {verdict}"
    if named:
        shown = ", ".join(f"«{label}»" for label in named)
        return f"the output names several labels ({shown}): ambiguous, a miss (gold «{gold}»)"
    shown = ", ".join(f"«{label}»" for label in sorted(label_set))
    return f"the output names none of the labels ({shown}): a miss (gold «{gold}»)"


def _predictions(
    outputs: Sequence[str], cases: Sequence[Case], labels: Sequence[str] | None
) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """(gold, predicted) for the cases that have a gold label, their positions, and
    the normalised label set."""
    label_set = _label_set(cases, labels)
    pattern = _label_pattern(label_set)
    gold, predicted, positions = [], [], []
    for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
        if case.label is None:
            continue
        gold.append(normalize_text(case.label, drop_articles=False))
        predicted.append(_extract(output, pattern))
        positions.append(i)
    return gold, predicted, np.asarray(positions, dtype=np.intp), label_set


def accuracy(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> Scored:
    """1.0 when the extracted label is the gold label; NaN for cases without one. The
    detail says which labels the output named."""
    gold, predicted, positions, label_set = _predictions(outputs, cases, labels)
    scores = np.full(len(outputs), np.nan)
    scores[positions] = np.asarray(gold, dtype=object) == np.asarray(predicted, dtype=object)
    pattern = _label_pattern(label_set)
    details: list[str | None] = [None] * len(outputs)
    for i, truth in zip(positions, gold, strict=True):
        details[i] = _why(outputs[i], truth, pattern, label_set)
    return Scored(scores, tuple(details))


def macro_f1(
    outputs: Sequence[str], cases: Sequence[Case], labels: Sequence[str] | None
) -> Callable[[np.ndarray], float]:
    """Macro-F1 of any resample of the cases (indices into ``outputs``).

    As ``sklearn.metrics.f1_score(gold, predicted, labels=classes, average="macro",
    zero_division=0.0)`` with classes = the gold labels of the resample plus its
    predicted known labels: per class F1 = 2·TP / (gold count + predicted count), then
    the plain mean over those classes. Computed from integer codes with ``np.bincount``:
    sklearn's own call (input checks, label encoding) took ~2 ms, and a bootstrap
    interval makes a thousand of them per config (18 s of CPU for 8 configs × 12
    cases, 0.8 s now with the bootstrap itself: benchmarks/perf/label_scoring.py)."""
    gold, predicted, positions, label_set = _predictions(outputs, cases, labels)
    classes = sorted(set(gold) | set(label_set))
    code = {label: i for i, label in enumerate(classes)}
    known = np.isin(classes, label_set)
    gold_at = np.full(len(outputs), -1, dtype=np.intp)  # -1: no gold label, not scored
    predicted_at = np.full(len(outputs), -1, dtype=np.intp)  # -1: names no class
    gold_at[positions] = [code[g] for g in gold]
    predicted_at[positions] = [code.get(p, -1) for p in predicted]
    k = len(classes)

    def resample(idx: np.ndarray) -> float:
        idx = np.asarray(idx, dtype=np.intp)
        g = gold_at[idx]
        scored = g >= 0
        if not scored.any():
            return float("nan")
        g, p = g[scored], predicted_at[idx][scored]
        gold_n = np.bincount(g, minlength=k)
        predicted_n = np.bincount(p[p >= 0], minlength=k)
        true_positive = np.bincount(g[g == p], minlength=k)
        present = (gold_n > 0) | ((predicted_n > 0) & known)
        f1 = 2 * true_positive[present] / (gold_n[present] + predicted_n[present])
        return float(f1.mean())

    return resample
