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
from typing import TYPE_CHECKING

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.suites import Case

# The scoring libraries are imported where they are used: importing them (nltk pulls in
# scipy) takes seconds, and checking a spec's metric names must not wait for that.
if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer
    from sacrebleu.metrics import BLEU, CHRF


@cache
def _tokenizer():
    """rouge-score's default tokenizer with its Porter stemmer, each word's stem
    memoised: stemming is most of ROUGE's cost and words repeat across outputs."""
    from nltk.stem.porter import PorterStemmer
    from rouge_score import tokenize
    from rouge_score.tokenizers import Tokenizer

    class MemoizedStemTokenizer(Tokenizer):
        def __init__(self) -> None:
            self._stemmer = SimpleNamespace(stem=lru_cache(maxsize=2**17)(PorterStemmer().stem))

        def tokenize(self, text: str) -> list[str]:
            return tokenize.tokenize(text, self._stemmer)

    return MemoizedStemTokenizer()


@cache
def _rouge_scorer(rouge_type: str) -> RougeScorer:
    from rouge_score.rouge_scorer import RougeScorer

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


def _corpus_resampler(
    make: Callable[[], BLEU | CHRF], outputs: Sequence[str], cases: Sequence[Case]
) -> Callable[[np.ndarray], float]:
    """Corpus BLEU/chrF of any resample of the cases from sacrebleu's per-sentence
    sufficient statistics (what its own paired bootstrap resamples). Cases without
    references contribute a row of zeros, i.e. nothing, as in ``corpus_score``."""
    with_refs = [i for i, c in enumerate(cases) if c.references]
    if not with_refs:
        return lambda idx: float("nan")
    width = max(len(cases[i].references) for i in with_refs)
    streams = [
        [cases[i].references[j] if j < len(cases[i].references) else None for i in with_refs]
        for j in range(width)
    ]
    metric = make()
    rows = metric._extract_corpus_statistics([outputs[i] for i in with_refs], streams)
    stats = np.zeros((len(outputs), len(rows[0])))
    stats[with_refs] = np.asarray(rows, dtype=float)
    integral = all(float(v).is_integer() for v in stats.flat)

    def resample(idx: np.ndarray) -> float:
        total = stats[idx].sum(axis=0)
        values = [int(v) for v in total] if integral else total.tolist()
        return float(metric._compute_score_from_stats(values).score)

    return resample


def _bleu() -> BLEU:
    from sacrebleu.metrics import BLEU

    return BLEU()


def _sentence_bleu() -> BLEU:
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)


def _chrf() -> CHRF:
    from sacrebleu.metrics import CHRF

    return CHRF()


def bleu(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    return _sentence_scores(_sentence_bleu, outputs, cases)


def corpus_bleu(
    outputs: Sequence[str], cases: Sequence[Case], labels: Sequence[str] | None
) -> Callable[[np.ndarray], float]:
    return _corpus_resampler(_bleu, outputs, cases)


def chrf(
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
    labels: Sequence[str] | None,
) -> np.ndarray:
    return _sentence_scores(_chrf, outputs, cases)


def corpus_chrf(
    outputs: Sequence[str], cases: Sequence[Case], labels: Sequence[str] | None
) -> Callable[[np.ndarray], float]:
    return _corpus_resampler(_chrf, outputs, cases)
