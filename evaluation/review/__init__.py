"""Humans in the loop: blinded side-by-side review, ratings and their statistics.

Importing the package registers the ``review_pairs``, ``ratings`` and ``judgements``
tables, so an engine made afterwards (``evaluation.storage.db.make_engine``) creates them.
The web app lives in :mod:`evaluation.review.app` (it needs FastAPI).
"""

from evaluation.review.store import (
    CRITERIA,
    PREFERENCE,
    PREFERENCES,
    Judgement,
    Rating,
    RecordedRating,
    ReviewPair,
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
