"""Overlap metrics against the references: ROUGE (rouge-score), BLEU and chrF (sacrebleu).

ROUGE is the F-measure with Porter stemming, the best over the case's references.
BLEU and chrF keep sacrebleu's 0–100 scale. Per case they are sacrebleu's sentence
scores (BLEU with effective order, as ``sacrebleu.sentence_bleu``) against all of the
case's references; the corpus value is ``corpus_bleu`` / ``corpus_chrf`` over the cases
that have references, with reference streams padded by ``None`` where cases have fewer
references than others (sacrebleu's convention for a variable number of references).
Cases without references score NaN and are left out of the corpus value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from types import SimpleNamespace

import numpy as np
from nltk.stem.porter import PorterStemmer
from rouge_score import tokenize
from rouge_score.rouge_scorer import RougeScorer
from rouge_score.tokenizers import Tokenizer
from sacrebleu.metrics import BLEU, CHRF

from evaluation.backends.base import GenerationResult
from evaluation.suites import Case


class _MemoizedStemTokenizer(Tokenizer):
    """rouge-score's default tokenizer with its Porter stemmer, each word's stem
    memoised: stemming is most of ROUGE's cost and words repeat across outputs."""

    def __init__(self) -> None:
        self._stemmer = SimpleNamespace(stem=lru_cache(maxsize=2**17)(PorterStemmer().stem))

    def tokenize(self, text: str) -> list[str]:
        return tokenize.tokenize(text, self._stemmer)


@cache
def _tokenizer() -> _MemoizedStemTokenizer:
    return _MemoizedStemTokenizer()


@cache
def _rouge_scorer(rouge_type: str) -> RougeScorer:
    return RougeScorer([rouge_type], tokenizer=_tokenizer())


def rouge(rouge_type: str) -> Callable[..., np.ndarray]:
    """Per-case ROUGE F-measure of ``rouge_type`` ("rouge1", "rouge2", "rougeL")."""

    def score(
        outputs: Sequence[str],
        cases: Sequence[Case],
        results: Sequence[GenerationResult] | None,
        labels: Sequence[str] | None,
    ) -> np.ndarray:
        scorer = _rouge_scorer(rouge_type)
        scores = np.full(len(outputs), np.nan)
        for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
            if case.references:
                best = scorer.score_multi(list(case.references), output)[rouge_type]
                scores[i] = best.fmeasure
        return scores

    return score


def _sentence_scores(
    make: Callable[[], BLEU | CHRF], outputs: Sequence[str], cases: Sequence[Case]
) -> np.ndarray:
    metric = make()
    scores = np.full(len(outputs), np.nan)
    for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
        if case.references:
            scores[i] = metric.sentence_score(output, list(case.references)).score
    return scores


def _corpus_score(
    make: Callable[[], BLEU | CHRF], outputs: Sequence[str], cases: Sequence[Case]
) -> float:
    pairs = [(o, c.references) for o, c in zip(outputs, cases, strict=True) if c.references]
    if not pairs:
        return float("nan")
    width = max(len(refs) for _, refs in pairs)
    streams = [[refs[j] if j < len(refs) else None for _, refs in pairs] for j in range(width)]
    return float(make().corpus_score([o for o, _ in pairs], streams).score)


def _sentence_bleu() -> BLEU:
    return BLEU(effective_order=True)


def bleu(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    return _sentence_scores(_sentence_bleu, outputs, cases)


def corpus_bleu(
    outputs: Sequence[str], cases: Sequence[Case], labels: Sequence[str] | None
) -> float:
    return _corpus_score(BLEU, outputs, cases)


def chrf(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    return _sentence_scores(CHRF, outputs, cases)


def corpus_chrf(
    outputs: Sequence[str], cases: Sequence[Case], labels: Sequence[str] | None
) -> float:
    return _corpus_score(CHRF, outputs, cases)
