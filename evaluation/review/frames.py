"""Reading ratings, pairs and judgements back as frames, joined with what statistics and
reports need (config, case, sample, group, latency)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text
from sqlmodel import Session

_GENERATION_FACTS = (
    'g.config_hash AS config, c.case_id, g.sample_index, c."group" AS "group", g.latency_s'
)


def ratings_frame(
    session: Session,
    experiment_id: int,
    *,
    current_only: bool = True,
    rater: str | None = None,
) -> pd.DataFrame:
    """Ratings of an experiment's generations, one row per rating, oldest first.
    ``current_only`` drops the rows a later rating superseded; ``current`` says which
    rows are current either way. Preference rows carry the pair's two configs."""
    where = ["g.experiment_id = :e"]
    params: dict[str, object] = {"e": experiment_id}
    if current_only:
        where.append("r.superseded_by IS NULL")
    if rater is not None:
        where.append("r.rater = :rater")
        params["rater"] = rater
    query = text(
        "SELECT r.id, r.rater, r.generation_id, r.criterion, r.stars, r.preference, r.notes, "
        "r.pair_id, r.created_at, r.superseded_by, "
        "CASE WHEN r.superseded_by IS NULL THEN 1 ELSE 0 END AS current, "
        f"{_GENERATION_FACTS}, ga.config_hash AS pair_config_a, gb.config_hash AS pair_config_b "
        "FROM ratings r JOIN generations g ON g.id = r.generation_id "
        "JOIN cases c ON c.uid = g.case_uid "
        "LEFT JOIN review_pairs p ON p.id = r.pair_id "
        "LEFT JOIN generations ga ON ga.id = p.generation_a "
        "LEFT JOIN generations gb ON gb.id = p.generation_b "
        f"WHERE {' AND '.join(where)} ORDER BY r.created_at, r.id"
    )
    frame = pd.read_sql(query, session.connection(), params=params)
    frame["current"] = frame["current"].astype(bool)
    return frame


def pairs_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """The experiment's review pairs with each side's config and case."""
    query = text(
        "SELECT p.id AS pair_id, p.case_uid, c.case_id, p.generation_a, p.generation_b, "
        "ga.config_hash AS config_a, gb.config_hash AS config_b, p.created_at "
        "FROM review_pairs p JOIN cases c ON c.uid = p.case_uid "
        "JOIN generations ga ON ga.id = p.generation_a "
        "JOIN generations gb ON gb.id = p.generation_b "
        "WHERE p.experiment_id = :e ORDER BY p.id"
    )
    return pd.read_sql(query, session.connection(), params={"e": experiment_id})


def judgements_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """Judge verdicts with the judged generation's config and case (pairwise rows also
    carry the other generation's config)."""
    query = text(
        "SELECT j.id, j.judge, j.generation_id, j.other_generation_id, j.criterion, j.stars, "
        f"j.preference, j.reason, j.attempts, j.seed, j.created_at, {_GENERATION_FACTS}, "
        "o.config_hash AS other_config "
        "FROM judgements j JOIN generations g ON g.id = j.generation_id "
        "JOIN cases c ON c.uid = g.case_uid "
        "LEFT JOIN generations o ON o.id = j.other_generation_id "
        "WHERE j.experiment_id = :e ORDER BY j.id"
    )
    return pd.read_sql(query, session.connection(), params={"e": experiment_id})
