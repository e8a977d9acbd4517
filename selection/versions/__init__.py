"""Selector versions: each training stored (`_store`), its model loaded back once
(`_model_cache`), whether it replaces the current one (`_promotion`, measured on the
same rows by `_paired_errors`), a retrain on data a stored version learned from
(`_same_data`), and the retraining that puts these together (`_retrain`)."""

from selection.versions._decisions import PromotionDecision, RetrainOutcome
from selection.versions._model_cache import LOAD_ERRORS, load_model
from selection.versions._paired_errors import COMPARED
from selection.versions._promotion import (
    MIN_COMPARISON_ROWS,
    SLACK,
    decide_promotion,
    promotion_advice,
)
from selection.versions._retrain import train_and_maybe_promote
from selection.versions._same_data import OWN_ERRORS_RULE
from selection.versions._store import (
    current_version,
    deserialize,
    list_versions,
    promote,
    save_version,
    serialize,
    sklearn_version,
)

__all__ = [
    "COMPARED",
    "LOAD_ERRORS",
    "MIN_COMPARISON_ROWS",
    "OWN_ERRORS_RULE",
    "SLACK",
    "PromotionDecision",
    "RetrainOutcome",
    "current_version",
    "decide_promotion",
    "deserialize",
    "list_versions",
    "load_model",
    "promote",
    "promotion_advice",
    "save_version",
    "serialize",
    "sklearn_version",
    "train_and_maybe_promote",
]
