"""The review tables (owner: evaluation/review): blinded pairs, human ratings and judge
verdicts. ``evaluation.storage.db.make_engine`` creates ``TABLES`` with the results
tables they refer to."""

# No `from __future__ import annotations`: the fields' annotations are evaluated as each
# class is made, not by pydantic from their strings (~2.5% of `show`'s start-up; test_schema).

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
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


#: Where a rating is current (not superseded) in its slot: stars are per (rater,
#: generation, criterion), a preference per (rater, pair).
_CURRENT_STARS = "superseded_by IS NULL AND criterion <> 'preference'"
_CURRENT_PREFERENCE = "superseded_by IS NULL AND criterion = 'preference'"


def _one_current(name: str, columns: tuple[str, ...], where: str) -> Index:
    """At most one current rating per slot, kept by the database: two saves of one slot
    at once (a double click on Save) both read "nothing current" and both inserted,
    two current ratings (newcomers' J1); now the later insert is refused."""
    return Index(
        name, *columns, unique=True, sqlite_where=text(where), postgresql_where=text(where)
    )


#: SQL run before the indexes are added to an older database: where a slot holds several
#: current ratings (stored before them), the newest stays current and supersedes the rest.
SETTLE_BEFORE_INDEX: dict[str, str] = {
    "uq_rating_current": (
        "UPDATE ratings SET superseded_by = (SELECT MAX(n.id) FROM ratings n WHERE "
        "n.rater = ratings.rater AND n.generation_id = ratings.generation_id AND "
        "n.criterion = ratings.criterion AND n.superseded_by IS NULL) "
        f"WHERE {_CURRENT_STARS} AND id < (SELECT MAX(n.id) FROM ratings n WHERE "
        "n.rater = ratings.rater AND n.generation_id = ratings.generation_id AND "
        "n.criterion = ratings.criterion AND n.superseded_by IS NULL)"
    ),
    "uq_rating_current_preference": (
        "UPDATE ratings SET superseded_by = (SELECT MAX(n.id) FROM ratings n WHERE "
        "n.rater = ratings.rater AND n.pair_id = ratings.pair_id AND "
        "n.criterion = 'preference' AND n.superseded_by IS NULL) "
        f"WHERE {_CURRENT_PREFERENCE} AND id < (SELECT MAX(n.id) FROM ratings n WHERE "
        "n.rater = ratings.rater AND n.pair_id = ratings.pair_id AND "
        "n.criterion = 'preference' AND n.superseded_by IS NULL)"
    ),
}


class Rating(Table, table=True):
    """One rater's stars for one criterion of one generation, or (criterion
    "preference") their preference in a pair: "A", "B" or "tie" as the pair shows it.
    A slot holds at most one current (not superseded) rating."""

    __tablename__ = "ratings"
    __table_args__ = (
        Index("ix_rating_slot", "rater", "generation_id", "criterion"),
        _one_current("uq_rating_current", ("rater", "generation_id", "criterion"), _CURRENT_STARS),
        _one_current("uq_rating_current_preference", ("rater", "pair_id"), _CURRENT_PREFERENCE),
    )

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
