"""The Metric value object: a name, what it measures, and how to score outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.errors import MetricError
from evaluation.suites import Case

ScoreType = Literal["binary", "continuous", "ordinal"]


@dataclass(frozen=True)
class Scored:
    """Per-case values with a detail per output (why it scored so: failed tests, a
    scorer's error or explanation); None where there is nothing to say."""

    values: np.ndarray
    details: tuple[str | None, ...]


# (outputs, cases, results, labels) -> one float per output (or Scored, with details)
PerCaseFn = Callable[
    [Sequence[str], Sequence[Case], Sequence[GenerationResult] | None, Sequence[str] | None],
    np.ndarray | Scored,
]
# (outputs, cases, labels) -> the corpus value of any resample, given as case indices
Resampler = Callable[[np.ndarray], float]
CorpusFn = Callable[[Sequence[str], Sequence[Case], Sequence[str] | None], Resampler]


@dataclass(frozen=True)
class Metric:
    """A way to score outputs. ``score`` gives one float per output (NaN where the
    output cannot be scored, e.g. the case has no reference). For ``corpus_level``
    metrics (BLEU, chrF, macro-F1) the headline value is ``corpus_score``, computed over
    the whole corpus; the per-case values exist for paired statistics.

    ``labels`` (keyword) is the suite's label set for the classification metrics;
    without it they use the gold labels of the cases scored plus any
    ``case.metadata["labels"]``. Other metrics ignore it.

    ``task_types`` are the suite task types the metric can score (accuracy needs labels,
    so classification only); a sweep pairing a metric with another task type is refused
    before anything runs. Every registered metric declares it (a test checks); ``None``
    means undeclared and is treated as "any".

    ``bounds``: (lo, hi) of a bounded score's scale (a share, ROUGE, cosine): its
    interval is computed so it stays on that scale (``evaluation.statistics``). A 0/1
    metric declares (0, 1) too: averaged over K samples per case its values are shares
    (Wilson applies while every value is 0 or 1). (0, inf) for a quantity that is never
    negative (words, seconds): its interval stays above 0. None for one that can be.

    ``embed_model``: the metric needs vectors from that embedding model, so the model
    is checked on the hosts before a run and the metric scores only once given an
    embedder (``with_embedder``, done by ``scoring``).

    ``source``: a user's scorer's code (``module:function``), whose declaration is
    stored when it scores; None for evalflow's own. ``not_here``: why this one cannot
    score here: its code does not import, and it is read with the declaration stored
    when it scored (its stored scores read as they are; scoring raises MetricError).
    """

    name: str
    description: str
    score_type: ScoreType
    higher_is_better: bool
    corpus_level: bool
    per_case: PerCaseFn = field(repr=False, compare=False)
    corpus: CorpusFn | None = field(default=None, repr=False, compare=False)
    descriptive: bool = False  # no better direction: compared, but never given a verdict
    task_types: tuple[str, ...] | None = None  # None: a user's scorer, trusted to serve any
    samples_together: bool = False
    embed_model: str | None = None  # scores from this embedding model's vectors (a host's)
    bounds: tuple[float, float] | None = None  # the scale of a bounded score, for intervals
    source: str | None = None  # a user's scorer: module:function
    not_here: str | None = None  # a user's scorer read from its stored declaration: why

    def serves(self, task_type: str) -> bool:
        """Whether this metric can score a suite of ``task_type``."""
        return self.task_types is None or task_type in self.task_types

    def score(
        self,
        outputs: Sequence[str],
        cases: Sequence[Case],
        results: Sequence[GenerationResult] | None = None,
        *,
        labels: Sequence[str] | None = None,
    ) -> np.ndarray:
        return self.score_details(outputs, cases, results, labels=labels).values

    def score_details(
        self,
        outputs: Sequence[str],
        cases: Sequence[Case],
        results: Sequence[GenerationResult] | None = None,
        *,
        labels: Sequence[str] | None = None,
    ) -> Scored:
        """``score`` with a detail per output (None for metrics that give none)."""
        _check_lengths(self.name, outputs, cases, results)
        scored = self.per_case(outputs, cases, results, labels)
        if isinstance(scored, Scored):
            return Scored(np.asarray(scored.values, dtype=np.float64), tuple(scored.details))
        return Scored(np.asarray(scored, dtype=np.float64), (None,) * len(outputs))

    def corpus_score(
        self,
        outputs: Sequence[str],
        cases: Sequence[Case],
        results: Sequence[GenerationResult] | None = None,
        *,
        labels: Sequence[str] | None = None,
    ) -> float:
        """The corpus value (corpus metrics), else the mean of the scorable per-case
        values; NaN when nothing is scorable."""
        _check_lengths(self.name, outputs, cases, results)
        if self.corpus is not None:
            return self.corpus(outputs, cases, labels)(np.arange(len(outputs)))
        values = self.score(outputs, cases, results, labels=labels)
        scorable = values[~np.isnan(values)]
        return float(scorable.mean()) if scorable.size else float("nan")

    def corpus_resampler(
        self, outputs: Sequence[str], cases: Sequence[Case], *, labels: Sequence[str] | None = None
    ) -> Resampler:
        """For bootstrap intervals of corpus metrics: a function giving the corpus value
        of a resample of the cases (indices, repeats allowed), computed from sufficient
        statistics extracted once, so a thousand resamples cost milliseconds."""
        _check_lengths(self.name, outputs, cases, None)
        if self.corpus is None:
            raise MetricError(f"{self.name} is not a corpus-level metric")
        return self.corpus(outputs, cases, labels)


def _check_lengths(
    name: str,
    outputs: Sequence[str],
    cases: Sequence[Case],
    results: Sequence[GenerationResult] | None,
) -> None:
    if len(outputs) != len(cases):
        raise MetricError(f"{name}: {len(outputs)} outputs for {len(cases)} cases")
    if results is not None and len(results) != len(outputs):
        raise MetricError(f"{name}: {len(results)} results for {len(outputs)} outputs")
