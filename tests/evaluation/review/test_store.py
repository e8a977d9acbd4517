"""Ratings are stored, never overwritten: a new rating supersedes the old row."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.review.schema import Rating
from evaluation.review.store import (
    CRITERIA,
    current_pair_rating,
    record_pair_rating,
    record_rating,
    save_pairs,
)
from evaluation.storage.repository import generations_frame


def _generations(db):
    with Session(db.engine) as session:
        return generations_frame(session, db.experiment_id)


def _pair(db, case_index=0, configs=(0, 1)):
    gens = _generations(db)
    case = db.suite.cases[case_index]
    ids = [
        int(gens[(gens.case_id == case.id) & (gens.config_hash == db.configs[k].hash)].id.iloc[0])
        for k in configs
    ]
    with Session(db.engine) as session:
        (pair,) = save_pairs(session, db.experiment_id, [(f"toy-qa/{case.id}", *ids)])
        session.commit()
        return pair.id, ids


def _stars(a=4, b=3):
    return {"A": dict.fromkeys(CRITERIA, a), "B": dict.fromkeys(CRITERIA, b)}


def test_make_engine_creates_the_review_tables(review_db):
    tables = set(inspect(review_db.engine).get_table_names())
    assert {"ratings", "review_pairs", "judgements"} <= tables


def test_a_changed_rating_supersedes_the_old_row_which_is_kept(review_db):
    pair_id, (_, gen_b) = _pair(review_db)
    with Session(review_db.engine) as session:
        first = record_pair_rating(
            session, pair_id, rater="ann", stars=_stars(), preference="A", notes="A is right"
        )
        session.commit()
        assert len(first.ratings) == 2 * len(CRITERIA) + 1 and first.superseded == 0

        changed = _stars()
        changed["B"]["speed"] = 5
        second = record_pair_rating(
            session, pair_id, rater="ann", stars=changed, preference="B", notes="B is faster"
        )
        session.commit()
        # only the speed of B and the preference changed
        assert len(second.ratings) == 2 and second.superseded == 2
        assert second.unchanged == 2 * len(CRITERIA) - 1

        rows = session.exec(select(Rating).order_by(Rating.id)).scalars().all()
        assert len(rows) == 2 * len(CRITERIA) + 3
        old_speed = next(r for r in rows if r.generation_id == gen_b and r.criterion == "speed")
        new_speed = next(r for r in rows if r.id == old_speed.superseded_by)
        assert (old_speed.stars, new_speed.stars) == (3, 5)
        assert new_speed.superseded_by is None

        current = current_pair_rating(session, pair_id, "ann")
        assert current["preference"] == "B" and current["notes"] == "B is faster"
        assert current["stars"]["B"]["speed"] == 5 and current["stars"]["A"]["accuracy"] == 4


def test_an_identical_resubmission_stores_nothing(review_db):
    pair_id, _ = _pair(review_db)
    with Session(review_db.engine) as session:
        record_pair_rating(session, pair_id, rater="ann", stars=_stars(), preference="tie")
        again = record_pair_rating(session, pair_id, rater="ann", stars=_stars(), preference="tie")
        session.commit()
        assert again.ratings == () and again.superseded == 0
        assert len(session.exec(select(Rating)).scalars().all()) == 2 * len(CRITERIA) + 1


def test_raters_and_pairs_have_separate_slots(review_db):
    pair_1, _ = _pair(review_db, configs=(0, 1))
    pair_2, _ = _pair(review_db, configs=(0, 2))  # the same generation of config 0
    with Session(review_db.engine) as session:
        record_pair_rating(session, pair_1, rater="ann", stars=_stars(), preference="A")
        record_pair_rating(session, pair_1, rater="bob", stars=_stars(2, 2), preference="B")
        record_pair_rating(session, pair_2, rater="ann", stars=_stars(), preference="B")
        session.commit()
        assert current_pair_rating(session, pair_1, "ann")["preference"] == "A"
        assert current_pair_rating(session, pair_1, "bob")["preference"] == "B"
        assert current_pair_rating(session, pair_2, "ann")["preference"] == "B"
        superseded = session.exec(select(Rating).where(Rating.superseded_by.is_not(None)))
        assert superseded.scalars().all() == []


@pytest.mark.parametrize("bad", [0, 6, 3.5, True, None, "4"])
def test_stars_outside_one_to_five_are_refused(review_db, bad):
    pair_id, _ = _pair(review_db)
    stars = _stars()
    stars["A"]["accuracy"] = bad
    with Session(review_db.engine) as session, pytest.raises(ValueError, match="accuracy"):
        record_pair_rating(session, pair_id, rater="ann", stars=stars, preference="A")


def test_incomplete_or_unknown_input_is_refused(review_db):
    pair_id, (gen_a, _) = _pair(review_db)
    stars = _stars()
    del stars["B"]["relevance"]
    with Session(review_db.engine) as session:
        with pytest.raises(ValueError, match=r"B\.relevance"):
            record_pair_rating(session, pair_id, rater="ann", stars=stars, preference="A")
        with pytest.raises(ValueError, match="preference"):
            record_pair_rating(session, pair_id, rater="ann", stars=_stars(), preference="C")
        with pytest.raises(ValueError, match="rater"):
            record_rating(session, rater=" ", generation_id=gen_a, criterion="speed", stars=3)
        with pytest.raises(ValueError, match="criterion"):
            record_rating(session, rater="ann", generation_id=gen_a, criterion="style", stars=3)
        with pytest.raises(StorageError, match="pair"):
            record_pair_rating(session, 999, rater="ann", stars=_stars(), preference="A")


def test_save_pairs_reuses_a_pair_drawn_in_the_other_order(review_db):
    pair_id, (gen_a, gen_b) = _pair(review_db)
    with Session(review_db.engine) as session:
        (again,) = save_pairs(session, review_db.experiment_id, [("toy-qa/c00", gen_b, gen_a)])
        assert again.id == pair_id
        assert (again.generation_a, again.generation_b) == (gen_a, gen_b)
