"""Metrics: score generated outputs against a case's references, label or timings.

metric = get_metric("rougeL")
per_case = metric.score(outputs, cases)        # one float per output, NaN if unscorable
headline = metric.corpus_score(outputs, cases)  # corpus value (BLEU, chrF, macro-F1)
"""

from evaluation._lazy import lazy_exports

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
    "metric_scale",
    "name_with_options",
    "normalize_text",
    "pass_at_k",
    "reading_experiment",
    "scorer",
    "unsuited_metric",
    "with_embedder",
]

# The metrics' modules import numpy and their scorers' libraries: a name is imported on
# first use, and `evaluation.metrics._directions` (what `show` ranks by) without them.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Metric": "evaluation.metrics._base",
        "Scored": "evaluation.metrics._base",
        "ScoreType": "evaluation.metrics._base",
        "extract_code": "evaluation.metrics._code",
        "check_constraints": "evaluation.metrics._constraints",
        "extract_label": "evaluation.metrics._labels",
        "pass_at_k": "evaluation.metrics._pass_at_k",
        "NOT_QUALITY": "evaluation.metrics._registry",
        "get_metric": "evaluation.metrics._registry",
        "get_metrics": "evaluation.metrics._registry",
        "metric_scale": "evaluation.metrics._registry",
        "is_descriptive": "evaluation.metrics._registry",
        "metric_names": "evaluation.metrics._registry",
        "metric_problem": "evaluation.metrics._registry",
        "unsuited_metric": "evaluation.metrics._registry",
        "DEFAULT_EMBED_MODEL": "evaluation.metrics._semantic",
        "Embeds": "evaluation.metrics._semantic",
        "embed_model_of": "evaluation.metrics._semantic",
        "name_with_options": "evaluation.metrics._semantic",
        "with_embedder": "evaluation.metrics._semantic",
        "match_explanation": "evaluation.metrics._text",
        "normalize_text": "evaluation.metrics._text",
        "ENTRY_POINT_GROUP": "evaluation.metrics._user",
        "scorer": "evaluation.metrics._user",
        "reading_experiment": "evaluation.metrics._stored",
    },
    globals(),
)
