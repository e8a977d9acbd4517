"""The metrics evalflow knows, by name."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from functools import cache

from evaluation.errors import EvalError, MetricError
from evaluation.metrics import (
    _code,
    _constraints,
    _echo,
    _key_points,
    _labels,
    _overlap,
    _retrieval,
    _semantic,
    _text,
    _timing,
)
from evaluation.metrics._base import CorpusFn, Metric, PerCaseFn, ScoreType
from evaluation.metrics._directions import DESCRIPTIVE, HIGHER_IS_BETTER
from evaluation.metrics._pass_at_k import parse_k
from evaluation.metrics._user import entry_point_names, user_metric
from evaluation.sandbox import SandboxUnavailable
from evaluation.suites import TASK_TYPES

# What each family of metrics needs from a case, as the task types that provide it.
WITH_TARGETS = TASK_TYPES  # references, or the label of a classification case
WITH_REFERENCES = tuple(t for t in TASK_TYPES if t != "classification")  # no references
WITH_LABELS = ("classification",)
ANY_TASK = TASK_TYPES
WITH_TESTS = ("code",)  # hidden unit tests in the case


def _metric(
    name: str,
    description: str,
    score_type: ScoreType,
    per_case: PerCaseFn,
    *,
    task_types: tuple[str, ...],
    corpus: CorpusFn | None = None,
    bounds: tuple[float, float] | None = None,
) -> Metric:
    return Metric(
        name=name,
        description=description,
        score_type=score_type,
        higher_is_better=HIGHER_IS_BETTER[name],  # a new metric's direction goes there
        corpus_level=corpus is not None,
        per_case=per_case,
        corpus=corpus,
        descriptive=name in DESCRIPTIVE,
        task_types=task_types,
        bounds=bounds,
    )


SHARE = (0.0, 1.0)  # a share or a mean of 0/1 samples: the scale of most bounded metrics
NON_NEGATIVE = (0.0, math.inf)  # words, seconds, tokens per second: never below 0


_ROUGE = "F-measure (rouge-score, Porter stemmer), best over the references."
_METRICS = (
    _metric(
        "exact_match",
        "Normalised output equals a normalised reference (SQuAD normalisation).",
        "binary",
        _text.exact_match,
        bounds=SHARE,
        task_types=WITH_TARGETS,
    ),
    _metric(
        "contains",
        "A normalised reference occurs in the normalised output as whole words.",
        "binary",
        _text.contains,
        bounds=SHARE,
        task_types=WITH_TARGETS,
    ),
    _metric(
        "regex",
        'metadata["answer_regex"] of the case matches the output (re.search); NaN without.',
        "binary",
        _text.regex_match,
        bounds=SHARE,
        task_types=ANY_TASK,
    ),
    *(
        _metric(
            name,
            f"ROUGE-{name[5:]} {_ROUGE}",
            "continuous",
            _overlap.rouge(name),
            bounds=SHARE,
            task_types=WITH_REFERENCES,
        )
        for name in ("rouge1", "rouge2", "rougeL")
    ),
    _metric(
        "bleu",
        "sacrebleu BLEU, 0-100: corpus BLEU is the headline; per case, sentence BLEU.",
        "continuous",
        _overlap.bleu,
        corpus=_overlap.corpus_bleu,
        bounds=(0.0, 100.0),
        task_types=WITH_REFERENCES,
    ),
    _metric(
        "chrf",
        "sacrebleu chrF, 0-100: corpus chrF is the headline; per case, sentence chrF.",
        "continuous",
        _overlap.chrf,
        corpus=_overlap.corpus_chrf,
        bounds=(0.0, 100.0),
        task_types=WITH_REFERENCES,
    ),
    _metric(
        "accuracy",
        "The label the output names equals the gold label: exactly one label occurring as "
        "whole words anywhere in the output is its answer (several: a miss).",
        "binary",
        _labels.accuracy,
        bounds=SHARE,
        task_types=WITH_LABELS,
    ),
    _metric(
        "macro_f1",
        "Macro-averaged F1 over classes (scikit-learn), the headline; per case, correctness "
        "(the output's label read as for accuracy).",
        "binary",
        _labels.accuracy,
        corpus=_labels.macro_f1,
        bounds=SHARE,
        task_types=WITH_LABELS,
    ),
    _metric(
        "echoes_prompt",
        f"1 when runs of {_echo.ECHO_RUN_WORDS}+ words repeated from the prompt make up at "
        f"least {_echo.ECHO_SHARE:.0%} of the output (lower is better: echoing earns no "
        "credit; the leaderboard flags it).",
        "binary",
        _echo.echoes_prompt,
        task_types=ANY_TASK,
    ),
    _metric(
        "output_length",
        "Words in the output (descriptive; shorter is cheaper).",
        "continuous",
        _text.output_length,
        bounds=NON_NEGATIVE,
        task_types=ANY_TASK,
    ),
    _metric(
        "latency_s",
        "Seconds from sending the request to its last byte, as the backend measured.",
        "continuous",
        _timing.timing(_timing.latency_s),
        bounds=NON_NEGATIVE,
        task_types=ANY_TASK,
    ),
    _metric(
        "ttft_s",
        "Seconds from sending the request to the first content token.",
        "continuous",
        _timing.timing(_timing.ttft_s),
        bounds=NON_NEGATIVE,
        task_types=ANY_TASK,
    ),
    _metric(
        "tokens_per_s",
        "Decode speed reported by the server: eval_count / eval_duration.",
        "continuous",
        _timing.timing(_timing.tokens_per_s),
        bounds=NON_NEGATIVE,
        task_types=ANY_TASK,
    ),
)
_CODE_METRICS = (
    _metric(
        "pass@1",
        "The program passes every hidden test, run in the sandbox (mean over samples: pass@1).",
        "binary",
        _code.pass_at_1,
        bounds=SHARE,
        task_types=WITH_TESTS,
    ),
    _metric(
        "tests_passed",
        "Share of the hidden tests the program passes, run in the sandbox.",
        "continuous",
        _code.tests_passed,
        bounds=SHARE,
        task_types=WITH_TESTS,
    ),
    _metric(
        "constraints",
        'Share of the case\'s metadata["constraints"] (length, content, format, tone) met.',
        "continuous",
        _constraints.constraints_met,
        bounds=SHARE,
        task_types=ANY_TASK,  # scores missing where a case has no constraints
    ),
)
_PIPELINE_METRICS = (
    _metric(
        "retrieval_recall_at_k",
        "1 when the retrieved chunks hold all of the case's gold evidence (rag pipelines).",
        "binary",
        _retrieval.retrieval_recall,
        bounds=SHARE,
        task_types=ANY_TASK,  # scores missing where a case has no gold evidence
    ),
    _metric(
        "key_point_recall",
        'Share of the case\'s metadata["key_points"] the output states (token overlap).',
        "continuous",
        _key_points.key_point_recall,
        bounds=SHARE,
        task_types=WITH_REFERENCES,
    ),
)
_METRICS = _METRICS + _CODE_METRICS + _PIPELINE_METRICS
_BY_NAME = {metric.name: metric for metric in _METRICS}


@cache
def _pass_at(k: int) -> Metric:
    """pass@k for k >= 2: one value per problem from all its samples (Chen et al. 2021)."""
    return Metric(
        name=f"pass@{k}",
        description=f"Unbiased pass@{k} per problem from its n >= {k} samples (Chen et al. 2021).",
        score_type="continuous",
        higher_is_better=True,
        corpus_level=False,
        per_case=_code.pass_at(k),
        task_types=WITH_TESTS,
        samples_together=True,
        bounds=SHARE,
    )


def metric_names() -> tuple[str, ...]:
    """Every known metric name, in a stable order."""
    return (*_BY_NAME, _semantic.NAME)


def metric_scale(name: str) -> tuple[float, float] | None:
    """The scale ``name``'s scores are declared on (chrF's (0, 100)); None where none is
    declared or ``name`` is no metric evalflow knows."""
    try:
        return get_metric(name).bounds
    except EvalError:
        return None


def get_metric(name: str) -> Metric:
    """The metric called ``name``: a built-in one, ``pass@k``, a user's scorer
    (``module:function`` or an ``evalflow.metrics`` entry point); MetricError listing the
    known ones otherwise."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    try:
        k = parse_k(name)
    except ValueError as exc:
        raise MetricError(str(exc)) from None
    if k is not None:
        return _pass_at(k)
    semantic = _semantic_metric(name)
    if semantic is not None:
        return semantic
    found = user_metric(name)
    if found is not None:
        return found
    names = [*_BY_NAME, _semantic.NAME, *entry_point_names()]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise MetricError(
        f"unknown metric '{name}'; {hint}known metrics: {', '.join(names)}, pass@k, "
        f"{_semantic.NAME}@EMBED_MODEL, or a scorer of your own as module:function"
    )


@cache
def _semantic_metric(name: str) -> Metric | None:
    return _semantic.semantic_metric(name, WITH_REFERENCES)


def unsuited_metric(name: str, task_type: str) -> str | None:
    """Why metric ``name`` cannot score a ``task_type`` suite, or None when it can (or is
    unknown: that is refused elsewhere, with the known names)."""
    try:
        metric = get_metric(name)
    except MetricError:
        return None
    if metric.serves(task_type):
        return None
    served = ", ".join(metric.task_types or ())
    return f"metric '{name}' cannot score a {task_type} suite; it serves {served} suites only"


# Metrics that describe a generation or time it without grading its quality: regression
# checks and the trend watch compare them as operations (latency, throughput), not quality.
NOT_QUALITY = frozenset({"output_length", "latency_s", "ttft_s", "tokens_per_s"})


def is_descriptive(name: str) -> bool:
    """Whether the metric called ``name`` describes without ranking (neither higher nor
    lower is better); a name that no longer loads (a user's scorer gone) ranks."""
    try:
        return get_metric(name).descriptive
    except EvalError:
        return False


def get_metrics(names: Iterable[str]) -> list[Metric]:
    """The metrics called ``names``, in that order."""
    return [get_metric(name) for name in names]


def metric_problem(name: str, samples_per_case: int = 1) -> str | None:
    """Why a sweep with ``samples_per_case`` samples cannot use the metric ``name``
    (unknown, a user's scorer that does not load, even where its stored declaration
    reads its scores, pass@k with fewer than k samples), or None when it can."""
    try:
        metric = get_metric(name)
    except MetricError as exc:
        return str(exc)
    if metric.not_here:
        return metric.not_here
    k = parse_k(name)
    if k is not None and k > samples_per_case:
        return f"{name} needs samples_per_case >= {k}, got {samples_per_case}"
    if k is not None or name == "tests_passed":
        try:
            _code.code_execution()
        except SandboxUnavailable as exc:
            return f"{name}: {exc}"
    return None
