"""The selector: learns from stored results which config suits a task under limits.

    from selection import recommend, record_outcome
    answer = recommend("qa", max_latency_s=2.0)
    print(answer.explain())
    record_outcome(answer.id, quality=1.0, latency_s=1.4)

Names are imported on first use, so ``import selection.schema`` (the tables) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evaluation._lazy import lazy_exports

if TYPE_CHECKING:
    from selection.frame import TrainingDataError, validate_training_frame
    from selection.outcomes import UnknownRecommendation, record_outcome
    from selection.quality import quality_metric
    from selection.recommendation import Recommendation, format_recommendation
    from selection.recommender import recommend
    from selection.report import render_report
    from selection.training import train_selector
    from selection.versions import train_and_maybe_promote

_EXPORTS = {
    "Recommendation": "selection.recommendation",
    "TrainingDataError": "selection.frame",
    "UnknownRecommendation": "selection.outcomes",
    "format_recommendation": "selection.recommendation",
    "quality_metric": "selection.quality",
    "recommend": "selection.recommender",
    "record_outcome": "selection.outcomes",
    "render_report": "selection.report",
    "train_and_maybe_promote": "selection.versions",
    "train_selector": "selection.training",
    "validate_training_frame": "selection.frame",
}

__all__ = [
    "Recommendation",
    "TrainingDataError",
    "UnknownRecommendation",
    "format_recommendation",
    "quality_metric",
    "recommend",
    "record_outcome",
    "render_report",
    "train_and_maybe_promote",
    "train_selector",
    "validate_training_frame",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
