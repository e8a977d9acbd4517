"""Humans in the loop: blinded side-by-side review, ratings and their statistics.

The ``review_pairs``, ``ratings`` and ``judgements`` tables are in
:mod:`evaluation.review.schema`. The web app lives in :mod:`evaluation.review.app` (it
needs FastAPI).
"""

from evaluation.review.schema import Judgement, Rating, ReviewPair
from evaluation.review.store import (
    CRITERIA,
    PREFERENCE,
    PREFERENCES,
    RecordedRating,
    current_pair_rating,
    record_pair_rating,
    record_rating,
    save_pairs,
)

__all__ = [
    "CRITERIA",
    "PREFERENCE",
    "PREFERENCES",
    "Judgement",
    "Rating",
    "RecordedRating",
    "ReviewPair",
    "current_pair_rating",
    "record_pair_rating",
    "record_rating",
    "save_pairs",
]
