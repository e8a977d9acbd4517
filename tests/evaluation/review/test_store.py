"""Ratings are stored, never overwritten: a new rating supersedes the old row."""

from __future__ import annotations

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from evaluation.calibration._import import import_ratings
from evaluation.errors import StorageError
from evaluation.review import store
from evaluation.review.schema import SETTLE_BEFORE_INDEX, Rating
from evaluation.review.store import (
    BLIND,
    CRITERIA,
    current_pair_rating,
    record_pair_rating,
    record_rating,
    save_pairs,
)
from evaluation.storage.db import EVALUATION_TABLES, create_tables, saved_at_once
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


def test_a_slot_holds_one_current_rating_in_the_database(review_db):
    """J1: two saves of one rating at once (a double click on Save; four fetches at once
    made four) both read "nothing current" and both stored a current rating. The
    database now refuses a second current rating of a slot, stars or preference."""
    pair_id, (gen_a, _) = _pair(review_db)
    for fields in (
        {"criterion": "accuracy", "stars": 2},
        {"criterion": "preference", "preference": "A", "pair_id": pair_id},
    ):
        with Session(review_db.engine) as session:
            for _ in range(2):
                session.add(Rating(rater="ann", generation_id=gen_a, **fields))
            with pytest.raises(IntegrityError):
                session.flush()
    with Session(review_db.engine) as session:  # superseded rows are any number
        first = Rating(rater="ann", generation_id=gen_a, criterion="accuracy", stars=2)
        session.add(first)
        session.flush()
        record_rating(session, rater="ann", generation_id=gen_a, criterion="accuracy", stars=3)
        record_rating(session, rater="ann", generation_id=gen_a, criterion="accuracy", stars=4)
        session.commit()
        current = _current_stars(session, "ann", gen_a)
        assert [r.stars for r in current] == [4]


def _current_stars(session, rater, generation_id):
    return (
        session.exec(
            select(Rating).where(
                Rating.rater == rater,
                Rating.generation_id == generation_id,
                Rating.criterion == "accuracy",
                Rating.superseded_by.is_(None),
            )
        )
        .scalars()
        .all()
    )


def test_a_save_that_raced_another_of_the_same_slot_is_tried_again(review_db, monkeypatch):
    """The race of J1, made to happen: this save reads its slots before the other save
    commits (it sees nothing current) and writes after. The database refuses its second
    current rating; ``saved_at_once`` tries again and the retry reads the other's rows:
    identical, so "unchanged", one current rating each."""
    pair_id, (gen_a, _) = _pair(review_db)
    stars = {"A": dict.fromkeys(BLIND, 2), "B": dict.fromkeys(BLIND, 4)}
    real = store._current_ratings
    tries, other_saved = [], []

    def read_before_the_other_commits(session, given):
        if not other_saved:  # the other save commits now, after this try's first read
            other_saved.append(True)
            with Session(review_db.engine) as other:
                record_pair_rating(other, pair_id, rater="ann", stars=stars, preference="B")
                other.commit()
        first_try = len(tries) == 1 and len(other_saved) == 1
        return {} if first_try else real(session, given)

    def save(session):
        tries.append(session)
        return record_pair_rating(session, pair_id, rater="ann", stars=stars, preference="B")

    monkeypatch.setattr(store, "_current_ratings", read_before_the_other_commits)
    saved = saved_at_once(review_db.engine, save)
    assert len(tries) == 2
    assert saved.ratings == () and saved.unchanged == 2 * len(BLIND) + 1
    with Session(review_db.engine) as session:
        assert [r.stars for r in _current_stars(session, "ann", gen_a)] == [2]
        assert current_pair_rating(session, pair_id, "ann")["preference"] == "B"
        assert len(session.exec(select(Rating)).scalars().all()) == 2 * len(BLIND) + 1


def test_an_import_stores_its_ratings_in_a_few_statements_not_three_each(review_db, tmp_path):
    """Each rating was stored alone: its generation looked up, its slot read, its row
    inserted and flushed (~3.7 ms of CPU a rating; 100,000 took ~6 min). An import's
    144 ratings, then the same with every grade changed (each superseding one), now go
    in a few statements each, whatever their number, one current rating a slot."""
    gens = _generations(review_db)
    path = tmp_path / "ratings.csv"
    statements: list[str] = []  # each an execute(), an executemany's rows all one
    event.listen(review_db.engine, "before_execute", lambda *a: statements.append(str(a[1])))
    for shift in (0, 1):
        lines = [
            f"{g.case_id},{g.config_hash},{rater},{criterion},{1 + (i + shift) % 5}"
            for i, g in enumerate(gens.itertuples())
            for rater in ("ann", "bob")
            for criterion in BLIND
        ]
        path.write_text("case,config,rater,criterion,stars\n" + "\n".join(lines) + "\n")
        statements.clear()
        done = import_ratings(review_db.engine, review_db.experiment, path, criteria=CRITERIA)
        assert (done.ratings, done.stored, done.superseded) == (144, 144, 144 * shift)
        assert len(statements) <= 12, statements  # 432 and more, one rating at a time
    with Session(review_db.engine) as session:
        rows = session.exec(select(Rating)).scalars().all()
    current = [r for r in rows if r.superseded_by is None]
    assert len(rows) == 288 and len(current) == 144
    assert {r.superseded_by for r in rows} - {None} == {r.id for r in current}


def test_an_older_database_with_two_current_ratings_of_a_slot_keeps_the_newest(review_db):
    """A database written before the unique indexes may hold a double submit's two
    current ratings: opening it supersedes the older by the newest, then adds them."""
    pair_id, (gen_a, _) = _pair(review_db)
    engine = review_db.engine
    with engine.begin() as connection:
        for name in SETTLE_BEFORE_INDEX:
            connection.exec_driver_sql(f"DROP INDEX {name}")
        for stars in (2, 2, 3):
            connection.exec_driver_sql(
                "INSERT INTO ratings (rater, generation_id, criterion, stars, notes, created_at)"
                f" VALUES ('ann', {gen_a}, 'accuracy', {stars}, '', '2026-11-29')"
            )
        for preference in ("A", "B"):
            connection.exec_driver_sql(
                "INSERT INTO ratings (rater, generation_id, criterion, preference, notes, "
                f"pair_id, created_at) VALUES ('ann', {gen_a}, 'preference', '{preference}', "
                f"'', {pair_id}, '2026-11-29')"
            )
    create_tables(engine, EVALUATION_TABLES)
    with Session(engine) as session:
        rows = session.exec(select(Rating).order_by(Rating.id)).scalars().all()
        stars, preference = rows[2].id, rows[4].id  # the newest of each slot
        assert [r.superseded_by for r in rows] == [stars, stars, None, preference, None]
    names = {i["name"] for i in inspect(engine).get_indexes("ratings")}
    assert set(SETTLE_BEFORE_INDEX) <= names
