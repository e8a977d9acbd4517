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

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class GivenRating:
    """One rating to store (``record_ratings``): stars for a criterion of
    ``CRITERIA``, or a preference (criterion ``PREFERENCE``) in pair ``pair_id``."""

    rater: str
    generation_id: int
    criterion: str
    stars: int | None = None
    preference: str | None = None
    notes: str = ""
    pair_id: int | None = None

    @property
    def slot(self) -> tuple:
        """What holds one current rating: (rater, generation, criterion) for stars,
        (rater, pair) for a preference (``schema.Rating``'s unique indexes)."""
        if self.criterion == PREFERENCE:
            return (self.rater, PREFERENCE, self.pair_id)
        return (self.rater, self.generation_id, self.criterion)


#: The most ids one query's IN list holds (well below SQLite's 32,766 bound variables).
IN_LIST = 500


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
    given = GivenRating(rater, generation_id, criterion, stars, preference, notes, pair_id)
    return record_ratings(session, [given])[0]


def record_ratings(
    session: Session, ratings: Sequence[GivenRating]
) -> list[tuple[Rating | None, int]]:
    """Store ``ratings`` (at most one a slot), each as ``record_rating`` stores one:
    (the new row, rows it superseded), or (None, 0) where the slot's current rating says
    the same. The generations and the slots' current ratings are read ``IN_LIST`` a
    query, and the new rows go in in one flush: each rating stored alone cost three
    statements and a flush (an import ~1.5 ms of CPU a rating at load 17, now ~0.17:
    benchmarks/perf/ratings_store.py)."""
    given = [_checked(r) for r in ratings]
    slots: set[tuple] = set()
    for r in given:
        if r.slot in slots:
            what = f"pair {r.pair_id}" if r.criterion == PREFERENCE else f"output {r.generation_id}"
            raise ValueError(f"two ratings of one slot: {r.rater!r}'s {r.criterion} of {what}")
        slots.add(r.slot)
    _check_generations(session, [r.generation_id for r in given])
    current = _current_ratings(session, given)
    out: list[tuple[Rating | None, int]] = []
    new: list[tuple[Rating, list[Rating]]] = []
    for r in given:
        rows = current.get(r.slot, [])
        if any((c.stars, c.preference, c.notes) == (r.stars, r.preference, r.notes) for c in rows):
            out.append((None, 0))
            continue
        row = Rating(
            rater=r.rater,
            generation_id=r.generation_id,
            criterion=r.criterion,
            stars=r.stars,
            preference=r.preference,
            notes=r.notes,
            pair_id=r.pair_id,
        )
        new.append((row, rows))
        out.append((row, len(rows)))
    # a slot's one current rating (a unique index) is set aside before the new row goes
    # in, then points at it: all in this transaction, so no reader sees the step
    for _, rows in new:
        for old in rows:
            old.superseded_by = old.id
    session.add_all(row for row, _ in new)
    session.flush()
    for row, rows in new:
        for old in rows:
            old.superseded_by = row.id
    return out


def _checked(r: GivenRating) -> GivenRating:
    """``r`` with its rater's name stripped and only the fields of its criterion;
    ValueError naming what is wrong."""
    rater = r.rater.strip()
    if not rater:
        raise ValueError("a rating needs a rater name")
    if r.criterion == PREFERENCE:
        if r.preference not in PREFERENCES:
            raise ValueError(f"preference must be one of {PREFERENCES}, got {r.preference!r}")
        if r.pair_id is None:
            raise ValueError("a preference belongs to a pair: pair_id is required")
        return replace(r, rater=rater, stars=None)
    if r.criterion in CRITERIA:
        return replace(r, rater=rater, stars=check_stars(r.stars, r.criterion), preference=None)
    raise ValueError(f"unknown criterion {r.criterion!r}; use one of {CRITERIA} or preference")


def _parts(ids: Iterable[T]) -> Iterator[list[T]]:
    """``ids`` sorted, ``IN_LIST`` at a time."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), IN_LIST):
        yield ordered[start : start + IN_LIST]


def _check_generations(session: Session, ids: Sequence[int]) -> None:
    """StorageError naming the first of ``ids`` that is no generation."""
    found: set[int] = set()
    for part in _parts(set(ids)):
        found.update(session.exec(select(Generation.id).where(Generation.id.in_(part))).scalars())
    missing = next((i for i in ids if i not in found), None)
    if missing is not None:
        raise StorageError(f"no generation with id {missing}")


def _current_ratings(session: Session, given: Sequence[GivenRating]) -> dict[tuple, list[Rating]]:
    """The current ratings of the slots of ``given``, by slot: each rater's, of the
    generations (stars) or pairs (preferences) they rate, a query per ``IN_LIST``."""
    wanted: dict[tuple[str, bool], set[int]] = defaultdict(set)
    for r in given:
        preference = r.criterion == PREFERENCE
        wanted[r.rater, preference].add(r.pair_id if preference else r.generation_id)
    slots = {r.slot for r in given}
    found: dict[tuple, list[Rating]] = defaultdict(list)
    for (rater, preference), ids in wanted.items():
        column = Rating.pair_id if preference else Rating.generation_id
        kind = Rating.criterion == PREFERENCE if preference else Rating.criterion != PREFERENCE
        for part in _parts(ids):
            query = select(Rating).where(
                Rating.rater == rater, kind, Rating.superseded_by.is_(None), column.in_(part)
            )
            for row in session.exec(query).scalars():
                slot = GivenRating(row.rater, row.generation_id, row.criterion, pair_id=row.pair_id)
                if slot.slot in slots:
                    found[slot.slot].append(row)
    return found


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
    (the review page's fast mode), and ``AFTER_REVEAL`` stars alone store those with it
    (a pair rated in fast mode, its speed rated once revealed); stars given earlier stay
    as they were."""
    pair = session.get(ReviewPair, pair_id)
    if pair is None:
        raise StorageError(f"no review pair with id {pair_id}")
    sides = {"A": pair.generation_a, "B": pair.generation_b}
    # speed alone (AFTER_REVEAL) keeps the blind stars as they are: fast mode's pairs
    blind_given = any(c in BLIND for s in sides for c in stars.get(s, {}))
    missing = [f"{s}.{c}" for s in sides for c in BLIND if c not in stars.get(s, {})]
    if blind_given and missing:
        raise ValueError(f"missing stars for {', '.join(missing)}")
    early = [f"{s}.{c}" for s in sides for c in AFTER_REVEAL if c in stars.get(s, {})]
    if early and not revealed:
        raise ValueError(
            f"{', '.join(early)}: speed is rated once the pair is revealed (its latency is "
            "hidden until then, as it names the bigger model)"
        )
    given = [
        GivenRating(rater, sides[s], c, stars=stars[s][c], pair_id=pair_id)
        for s in sides
        for c in CRITERIA
        if c in stars.get(s, {})
    ]
    a = pair.generation_a
    given.append(GivenRating(rater, a, PREFERENCE, None, preference, notes, pair_id))
    stored = record_ratings(session, given)
    rows = tuple(row for row, _ in stored if row is not None)
    superseded = sum(replaced for _, replaced in stored)
    return RecordedRating(rows, superseded, len(stored) - len(rows))


def _current_slot(rater: str, generation_id: int, criterion: str, pair_id: int | None):
    query = select(Rating).where(
        Rating.rater == rater, Rating.criterion == criterion, Rating.superseded_by.is_(None)
    )
    if criterion == PREFERENCE:
        return query.where(Rating.pair_id == pair_id)
    return query.where(Rating.generation_id == generation_id)


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
