"""Metrics: score generated outputs against a case's references, label or timings.

metric = get_metric("rougeL")
per_case = metric.score(outputs, cases)        # one float per output, NaN if unscorable
headline = metric.corpus_score(outputs, cases)  # corpus value (BLEU, chrF, macro-F1)
"""

from evaluation.metrics._base import Metric, Scored, ScoreType
from evaluation.metrics._code import extract_code
from evaluation.metrics._constraints import check_constraints
from evaluation.metrics._labels import extract_label
from evaluation.metrics._pass_at_k import pass_at_k
from evaluation.metrics._registry import (
    NOT_QUALITY,
    get_metric,
    get_metrics,
    is_descriptive,
    metric_names,
    metric_problem,
    unsuited_metric,
)
from evaluation.metrics._semantic import (
    DEFAULT_EMBED_MODEL,
    Embeds,
    embed_model_of,
    name_with_options,
    with_embedder,
)
from evaluation.metrics._text import match_explanation, normalize_text
from evaluation.metrics._user import ENTRY_POINT_GROUP, scorer

__all__ = [
    "DEFAULT_EMBED_MODEL",
    "ENTRY_POINT_GROUP",
    "NOT_QUALITY",
    "Embeds",
    "Metric",
    "ScoreType",
    "Scored",
    "check_constraints",
    "embed_model_of",
    "extract_code",
    "extract_label",
    "get_metric",
    "get_metrics",
    "is_descriptive",
    "match_explanation",
    "metric_names",
    "metric_problem",
    "name_with_options",
    "normalize_text",
    "pass_at_k",
    "scorer",
    "unsuited_metric",
    "with_embedder",
]
