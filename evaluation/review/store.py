"""Human ratings and judge verdicts: the writes.

A rating is one row per (rater, generation, criterion). Rating the same thing again adds
a row and marks the earlier one ``superseded_by`` the new one: nothing is overwritten,
and a rater's history keeps every version. A slot has one current rating, which the
database keeps (``schema.Rating``'s unique indexes; ``storage.db.saved_at_once`` tries
again a save that raced another). The preference of a blinded pair is a rating
with criterion "preference" whose slot is (rater, pair) rather than (rater, generation),
since one generation can appear in several pairs.

The tables are in :mod:`evaluation.review.schema`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

from sqlalchemy import or_, select
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.review.schema import Rating, ReviewPair
from evaluation.storage.models import Generation

T = TypeVar("T")

Criterion = Literal["accuracy", "completeness", "relevance", "speed"]
CRITERIA: tuple[str, ...] = get_args(Criterion)
#: Rated only once the pair is revealed: the latency it rests on names the bigger model,
#: so the blinded page hides it until then (the other criteria are asked blind).
AFTER_REVEAL: tuple[str, ...] = ("speed",)
BLIND: tuple[str, ...] = tuple(c for c in CRITERIA if c not in AFTER_REVEAL)
PREFERENCE = "preference"
Preference = Literal["A", "B", "tie"]
PREFERENCES: tuple[str, ...] = get_args(Preference)
Side = Literal["A", "B"]


@dataclass(frozen=True)
class RecordedRating:
    """What one submission stored: the new rows and how many earlier ones they
    superseded (0 when the rater had not rated this before)."""

    ratings: tuple[Rating, ...]
    superseded: int
    unchanged: int


def check_stars(stars: object, what: str) -> int:
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"{what}: stars must be an integer from 1 to 5, got {stars!r}")
    return stars


def save_pairs(
    session: Session,
    experiment_id: int,
    draws: Sequence[tuple[str, int, int]],
    *,
    seed: int = 0,
) -> list[ReviewPair]:
    """Store (case uid, generation A, generation B) pairs, reusing a stored pair of the
    same two generations (in either order, keeping its sides); returned in draw order."""
    ids = {g for _, a, b in draws for g in (a, b)}
    existing = session.exec(
        select(ReviewPair).where(
            ReviewPair.experiment_id == experiment_id,
            or_(ReviewPair.generation_a.in_(ids), ReviewPair.generation_b.in_(ids)),
        )
    ).scalars()
    known = {frozenset((p.generation_a, p.generation_b)): p for p in existing}
    out: list[ReviewPair] = []
    for case_uid, a, b in draws:
        key = frozenset((a, b))
        if key not in known:
            pair = ReviewPair(
                experiment_id=experiment_id,
                case_uid=case_uid,
                generation_a=a,
                generation_b=b,
                seed=seed,
            )
            session.add(pair)
            session.flush()
            known[key] = pair
        out.append(known[key])
    return out


def record_rating(
    session: Session,
    *,
    rater: str,
    generation_id: int,
    criterion: str,
    stars: int | None = None,
    preference: str | None = None,
    notes: str = "",
    pair_id: int | None = None,
) -> tuple[Rating | None, int]:
    """Store one rating; returns (the new row, rows it superseded). When the rater's
    current rating of this slot says the same (even if given in another pair), nothing
    is stored: (None, 0)."""
    rater = rater.strip()
    if not rater:
        raise ValueError("a rating needs a rater name")
    if criterion == PREFERENCE:
        if preference not in PREFERENCES:
            raise ValueError(f"preference must be one of {PREFERENCES}, got {preference!r}")
        if pair_id is None:
            raise ValueError("a preference belongs to a pair: pair_id is required")
        stars = None
    elif criterion in CRITERIA:
        stars = check_stars(stars, criterion)
        preference = None
    else:
        raise ValueError(f"unknown criterion {criterion!r}; use one of {CRITERIA} or preference")
    if session.get(Generation, generation_id) is None:
        raise StorageError(f"no generation with id {generation_id}")
    current = list(session.exec(_current_slot(rater, generation_id, criterion, pair_id)).scalars())
    if any((r.stars, r.preference, r.notes) == (stars, preference, notes) for r in current):
        return None, 0
    row = Rating(
        rater=rater,
        generation_id=generation_id,
        criterion=criterion,
        stars=stars,
        preference=preference,
        notes=notes,
        pair_id=pair_id,
    )
    # the slot's one current rating (a unique index) is set aside before the new row
    # goes in, then points at it: all in this transaction, so no reader sees the step
    for old in current:
        old.superseded_by = old.id
        session.add(old)
    session.add(row)
    session.flush()
    for old in current:
        old.superseded_by = row.id
        session.add(old)
    return row, len(current)


def _current_slot(rater: str, generation_id: int, criterion: str, pair_id: int | None):
    query = select(Rating).where(
        Rating.rater == rater, Rating.criterion == criterion, Rating.superseded_by.is_(None)
    )
    if criterion == PREFERENCE:
        return query.where(Rating.pair_id == pair_id)
    return query.where(Rating.generation_id == generation_id)


def record_pair_rating(
    session: Session,
    pair_id: int,
    *,
    rater: str,
    stars: Mapping[str, Mapping[str, int]],
    preference: str,
    notes: str = "",
    revealed: bool = True,
) -> RecordedRating:
    """Store a rater's verdict on a pair: ``stars[side][criterion]`` for sides "A" and
    "B" and every blind criterion (``BLIND``), the preference, and notes (kept on the
    preference row). ``AFTER_REVEAL`` criteria (speed) may be given only once the pair is
    ``revealed``, and are optional then. Empty ``stars`` stores the preference alone
    (the review page's fast mode); stars given earlier stay as they were."""
    pair = session.get(ReviewPair, pair_id)
    if pair is None:
        raise StorageError(f"no review pair with id {pair_id}")
    sides = {"A": pair.generation_a, "B": pair.generation_b}
    given = any(stars.get(s) for s in sides)
    missing = [f"{s}.{c}" for s in sides for c in BLIND if c not in stars.get(s, {})]
    if given and missing:
        raise ValueError(f"missing stars for {', '.join(missing)}")
    early = [f"{s}.{c}" for s in sides for c in AFTER_REVEAL if c in stars.get(s, {})]
    if early and not revealed:
        raise ValueError(
            f"{', '.join(early)}: speed is rated once the pair is revealed (its latency is "
            "hidden until then, as it names the bigger model)"
        )
    rows: list[Rating] = []
    superseded = unchanged = 0
    entries = [
        (sides[s], c, stars[s][c], None, "")
        for s in sides
        for c in CRITERIA
        if c in stars.get(s, {})
    ]
    entries.append((pair.generation_a, PREFERENCE, None, preference, notes))
    for generation_id, criterion, value, pref, text in entries:
        row, replaced = record_rating(
            session,
            rater=rater,
            generation_id=generation_id,
            criterion=criterion,
            stars=value,
            preference=pref,
            notes=text,
            pair_id=pair_id,
        )
        if row is None:
            unchanged += 1
        else:
            rows.append(row)
            superseded += replaced
    return RecordedRating(tuple(rows), superseded, unchanged)


def current_pair_rating(session: Session, pair_id: int, rater: str) -> dict | None:
    """The rater's current verdict on a pair in the shape ``record_pair_rating`` takes,
    with ``rated_at``; None when they have not given a preference for it yet."""
    pair = session.get(ReviewPair, pair_id)
    if pair is None:
        raise StorageError(f"no review pair with id {pair_id}")
    pref = session.exec(_current_slot(rater, pair.generation_a, PREFERENCE, pair_id)).scalars()
    pref_row = next(iter(pref), None)
    if pref_row is None:
        return None
    stars: dict[str, dict[str, int]] = {"A": {}, "B": {}}
    for side, generation_id in (("A", pair.generation_a), ("B", pair.generation_b)):
        for criterion in CRITERIA:
            found = session.exec(_current_slot(rater, generation_id, criterion, None)).scalars()
            row = next(iter(found), None)
            if row is not None:
                stars[side][criterion] = row.stars
    return {
        "stars": stars,
        "preference": pref_row.preference,
        "notes": pref_row.notes,
        "rated_at": pref_row.created_at.isoformat(),
    }


def rated_pair_ids(session: Session, rater: str, pair_ids: Sequence[int]) -> set[int]:
    """Which of ``pair_ids`` the rater has a current preference for."""
    if not pair_ids:
        return set()
    rows = session.exec(
        select(Rating.pair_id).where(
            Rating.rater == rater,
            Rating.criterion == PREFERENCE,
            Rating.superseded_by.is_(None),
            Rating.pair_id.in_(list(pair_ids)),
        )
    ).all()
    return {int(r[0]) for r in rows}
