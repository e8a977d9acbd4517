"""Metrics: score generated outputs against a case's references, label or timings.

metric = get_metric("rougeL")
per_case = metric.score(outputs, cases)        # one float per output, NaN if unscorable
headline = metric.corpus_score(outputs, cases)  # corpus value (BLEU, chrF, macro-F1)
"""

from evaluation.metrics._base import Metric, ScoreType
from evaluation.metrics._labels import extract_label
from evaluation.metrics._registry import get_metric, get_metrics, metric_names, unsuited_metric
from evaluation.metrics._text import normalize_text

__all__ = [
    "Metric",
    "ScoreType",
    "extract_label",
    "get_metric",
    "get_metrics",
    "metric_names",
    "normalize_text",
    "unsuited_metric",
]
