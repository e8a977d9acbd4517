"""The review tables (owner: evaluation/review): blinded pairs, human ratings and judge
verdicts. ``evaluation.storage.db.make_engine`` creates ``TABLES`` with the results
tables they refer to."""

# No `from __future__ import annotations`: the fields' annotations are evaluated as each
# class is made, not by pydantic from their strings (~2.5% of `show`'s start-up; test_schema).

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from evaluation.storage.models import Table, utcnow


class ReviewPair(Table, table=True):
    """Two generations of one case shown side by side; ``generation_a`` is shown on the
    left as "A". The sides are drawn at random once, when the pair is made."""

    __tablename__ = "review_pairs"
    __table_args__ = (
        UniqueConstraint("experiment_id", "generation_a", "generation_b", name="uq_review_pair"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", index=True)
    case_uid: str = Field(foreign_key="cases.uid")
    generation_a: int = Field(foreign_key="generations.id")
    generation_b: int = Field(foreign_key="generations.id")
    seed: int = 0
    created_at: datetime = Field(default_factory=utcnow)


#: SQL: the rating ``r`` is of a generation of experiment ``:e``. Looked up from the
#: ratings (a few), not from the experiment's generations: joined the other way, SQLite
#: went through every generation (13 ms at 100,000, for no rating at all).
RATED_IN_EXPERIMENT = (
    "EXISTS (SELECT 1 FROM generations g WHERE g.id = r.generation_id AND g.experiment_id = :e)"
)


class Rating(Table, table=True):
    """One rater's stars for one criterion of one generation, or (criterion
    "preference") their preference in a pair: "A", "B" or "tie" as the pair shows it."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_rating_slot", "rater", "generation_id", "criterion"),)

    id: int | None = Field(default=None, primary_key=True)
    rater: str = Field(index=True)
    generation_id: int = Field(foreign_key="generations.id", index=True)
    criterion: str
    stars: int | None = None
    preference: str | None = None
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    pair_id: int | None = Field(default=None, foreign_key="review_pairs.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    superseded_by: int | None = Field(default=None, foreign_key="ratings.id")


class Judgement(Table, table=True):
    """A judge model's verdict. Pointwise: ``stars`` for ``criterion`` of
    ``generation_id`` (None when unscored; ``reason`` says why). Pairwise (criterion
    "preference"): ``generation_id`` was shown first and ``other_generation_id`` second,
    ``preference`` is "first", "second" or "tie" as the judge saw them."""

    __tablename__ = "judgements"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id", index=True)
    judge: str = Field(index=True)
    generation_id: int = Field(foreign_key="generations.id", index=True)
    other_generation_id: int | None = Field(default=None, foreign_key="generations.id")
    criterion: str
    stars: int | None = None
    preference: str | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    attempts: int = 1
    seed: int = 0
    created_at: datetime = Field(default_factory=utcnow)


TABLES: tuple[type[SQLModel], ...] = (ReviewPair, Rating, Judgement)
