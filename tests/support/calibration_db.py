"""A review experiment with a judge's stars on every output and people's stars on some:
what the calibration reads. The judge rates one star above the people, less one for the
third config's outputs (a judge with a bias the people do not share)."""

from __future__ import annotations

from sqlmodel import Session

from evaluation.review.schema import Judgement
from evaluation.review.store import record_rating
from evaluation.storage.db import session_scope
from evaluation.storage.repository import generations_frame
from tests.support.review_db import ReviewDB, build_review_db

JUDGE = "ollama:judge-model"


def people_stars(config_index: int, case_index: int) -> int:
    return 1 + (2 * config_index + case_index) % 5


def judge_stars(config_index: int, case_index: int) -> int:
    return min(5, people_stars(config_index, case_index) + (1 if config_index < 2 else 0))


def build_calibration_db(
    url: str, *, n_cases: int = 12, rated_cases: int = 6, judge: str = JUDGE
) -> ReviewDB:
    """Every output judged on accuracy; the first ``rated_cases`` cases of every
    config rated by rater "ana"."""
    db = build_review_db(url, n_cases=n_cases, name="calib")
    with session_scope(db.engine) as session:
        add_stars(session, db, rated_cases=rated_cases, judge=judge)
    return db


def add_stars(session: Session, db: ReviewDB, *, rated_cases: int, judge: str = JUDGE) -> None:
    gens = generations_frame(session, db.experiment_id)
    order = [c.hash for c in db.configs]
    for g in gens.itertuples():
        k = order.index(g.config_hash)
        i = int(str(g.case_id)[1:])
        session.add(_accuracy(db, judge, int(g.id), judge_stars(k, i)))
        if i < rated_cases:
            record_rating(
                session,
                rater="ana",
                generation_id=int(g.id),
                criterion="accuracy",
                stars=people_stars(k, i),
            )


def judge_every_output(
    session: Session, db: ReviewDB, stars: int | None, *, judge: str = JUDGE, reason: str = ""
) -> None:
    """``judge`` gives every output of ``db`` the same ``stars`` on accuracy (None:
    unscored, for ``reason``)."""
    for g in generations_frame(session, db.experiment_id).itertuples():
        session.add(_accuracy(db, judge, int(g.id), stars, reason or None))


def _accuracy(
    db: ReviewDB, judge: str, generation_id: int, stars: int | None, reason: str | None = None
) -> Judgement:
    return Judgement(
        experiment_id=db.experiment_id,
        judge=judge,
        generation_id=generation_id,
        criterion="accuracy",
        stars=stars,
        reason=reason,
    )


def add_pairwise(session: Session, db: ReviewDB, *, judge: str = JUDGE) -> None:
    """Pairwise verdicts in both orders for config 0 against config 1 on every case: the
    judge picks the output shown first in 3 of every 4 verdicts."""
    gens = generations_frame(session, db.experiment_id)
    by = {(g.config_hash, g.case_id): int(g.id) for g in gens.itertuples()}
    a_hash, b_hash = db.configs[0].hash, db.configs[1].hash
    k = 0
    for case in sorted(gens["case_id"].unique()):
        a, b = by[(a_hash, case)], by[(b_hash, case)]
        for first, second in ((a, b), (b, a)):
            choice = "second" if k % 4 == 3 else "first"
            k += 1
            session.add(
                Judgement(
                    experiment_id=db.experiment_id,
                    judge=judge,
                    generation_id=first,
                    other_generation_id=second,
                    criterion="preference",
                    preference=choice,
                )
            )
