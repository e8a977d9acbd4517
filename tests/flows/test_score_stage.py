"""The score and aggregate stages of a run: the score stage reads one config's
generations at a time (all of a 100,000-generation run's at once held hundreds of MiB),
the aggregate stage only the columns aggregates come from, and both store what they
stored reading the whole experiment."""

from __future__ import annotations

import logging

import tasks.results as results
from evaluation.storage import repository
from evaluation.storage.db import session_scope
from tests.support.review_db import METRICS, build_review_db


def stored(db) -> tuple[list, list]:
    """The experiment's scores and aggregates (NaN as -1: comparable)."""
    with session_scope(db.engine) as session:
        scores = repository.scores_frame(session, db.experiment_id)
        aggregates = repository.aggregates_frame(session, db.experiment_id)
    scores = scores.sort_values(["generation_id", "metric"]).fillna(-1).to_dict("records")
    aggregates = aggregates.drop(columns=["experiment_id"]).fillna(-1).to_dict("records")
    return scores, aggregates


def test_score_and_aggregate_config_by_config_store_what_the_whole_did(database_url, monkeypatch):
    db = build_review_db(database_url)  # scored and aggregated from whole frames
    before = stored(db)
    reads = []
    whole = repository.generations_frame

    def spy(session, experiment_id, *, config=None):
        reads.append(config)
        return whole(session, experiment_id, config=config)

    monkeypatch.setattr(results, "generations_frame", spy)
    monkeypatch.setattr(results, "get_run_logger", lambda: logging.getLogger("test"))
    assert results.score.fn(db.engine, db.experiment_id, db.suite, METRICS) == 24
    results.aggregate.fn(db.engine, db.experiment_id, db.suite, METRICS)
    assert reads == [c.hash for c in db.configs]  # one config at a time, never all
    assert stored(db) == before
