"""What a retraining decided: whether its version was promoted and why, what it stored."""

from __future__ import annotations

from dataclasses import dataclass, field

from selection.training import TrainingResult


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str
    incumbent_id: int | None = None
    basis: str = ""  # "unseen rows", "cross-validation", "not comparable" or "first version"
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)
    n_comparison_rows: int = 0


@dataclass
class RetrainOutcome:
    """What one retraining did: the stored version and why it was (not) promoted."""

    version_id: int
    decision: PromotionDecision
    result: TrainingResult | None  # None: a stored version learned from this data; none trained
    sklearn_version: str
    n_outcomes: int = 0  # recorded outcomes learned from (:mod:`selection.outcomes`)
    outcomes_left_out: int = 0  # those stored but left out (`retrain --no-outcomes`)
    outcomes_unmeasured: int = 0  # left out: on a config the frame has no run of
