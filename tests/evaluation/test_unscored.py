"""A metric whose scorer raised on outputs (or could not score them) is said under the
leaderboard, with how many and one reason: a user's scorer raising on 28 of 28
generations showed only a column of "–" in run, rescore and show (newcomer F8)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evaluation.compare._leaderboard import corpus_failed_flags, load_leaderboard, render_text
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import (
    generations_frame,
    register_experiment,
    score_details_frame,
)
from evaluation.storage.repository import replace_score_details as details
from evaluation.storage.unscored import unscored
from evaluation.view.summary import experiment_summary
from tests.support.databases import sqlite_or_postgres
from tests.support.results_db import add_experiment, make_config, make_suite

SUITE = make_suite(4)
A, B, C = (make_config("m:1b", t) for t in (0.0, 0.5, 1.0))
KABOOM = "error: RuntimeError: kaboom"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres(request.param, tmp_path / "r.db", "evalflow_unscored")


def _experiment(session) -> int:
    scores = {
        A: {"exact_match": [None, None, None, None], "contains": [1.0, 1.0, 0.0, 1.0]},
        B: {"exact_match": [None, 1.0, None, 0.0], "contains": [None, 1.0, 1.0, 1.0]},
        C: {"exact_match": [None, 1.0, 1.0, 1.0], "contains": [1.0, 1.0, 1.0, 1.0]},
    }
    experiment = add_experiment(session, "boomy", SUITE, scores).id
    frame = generations_frame(session, experiment).sort_values("id")
    ids = {(r.config_hash, r.case_id): int(r.id) for r in frame.itertuples()}
    cases = [c.id for c in SUITE.cases]

    def of(config, *at: int) -> list[int]:
        return [ids[(config.hash, cases[i])] for i in at]

    details(session, of(A, 0, 1, 2, 3), "exact_match", [KABOOM] * 3 + ["error: ValueError: odd"])
    details(session, of(B, 0, 2), "exact_match", [KABOOM, KABOOM])
    # missing with no reason (a case without references): not a failure
    # a scorer's own explanation that starts like an error, on a score it gave: not one
    details(session, of(B, 1), "contains", ["error: none, it matched"])
    details(session, of(B, 0), "contains", ["not scored: the scorer returned inf, " + "x" * 200])
    # the config the spec dropped: its failures are not the experiment's any more
    details(session, of(C, 0), "exact_match", [KABOOM])
    return experiment


def test_failed_scorers_are_counted_per_metric_with_a_reason(url: str) -> None:
    engine = make_engine(url)
    with session_scope(engine) as session:
        experiment = _experiment(session)
        register_experiment(  # the spec edited: C dropped
            session,
            name="boomy",
            suite=SUITE,
            configs=[A, B],
            spec={"name": "boomy"},
            spec_path="",
            samples_per_case=1,
            metrics=["exact_match", "contains"],
            simulated=False,
        )
        found = unscored(session, experiment, ["exact_match", "contains"])
        assert [u.words() for u in found] == [
            "exact_match raised on 6 of 8 generations (RuntimeError: kaboom, and 1 other error)",
            "contains could not score 1 of 8 generations (the scorer returned inf, "
            + "x" * 74
            + "…)",
        ]
        assert unscored(session, experiment, ["contains"])[0].metric == "contains"
        assert unscored(session, experiment, []) == []

        board = load_leaderboard(session, "boomy")
        flag = (
            "NOT SCORED: exact_match raised on 6 of 8 generations (RuntimeError: kaboom, and 1 "
            "other error): those scores are missing, the reason kept with each output "
            "(evalflow view boomy)"
        )
        assert flag in board.notes
        assert sum(n.startswith("NOT SCORED") for n in board.notes) == 2
        shown = render_text(board, columns=100)
        assert flag in " ".join(shown.split())  # under the table, wrapped at the width
        assert flag in experiment_summary(session, "boomy").flags  # the view's summary


def test_a_corpus_function_that_failed_is_flagged_once_per_metric() -> None:
    raised = "bleu_mine's corpus function raised ZeroDivisionError: no cases"
    aggregates = [
        {"metric": "bleu_mine", "config_hash": "a", "note": raised},
        {
            "metric": "bleu_mine",
            "config_hash": "b",
            "note": "bleu_mine's corpus function returned nan",
        },
        {"metric": "bleu_mine", "config_hash": "c", "note": ""},
        {"metric": "exact_match", "config_hash": "a", "note": "one case group"},
    ]
    assert corpus_failed_flags(aggregates) == (
        f"NOT SCORED: {raised}, and 1 other error, on 2 of 3 configs: those corpus values "
        "are missing",
    )
    assert corpus_failed_flags(aggregates[2:]) == ()


def test_no_flag_where_every_scorer_scored(url: str) -> None:
    engine = make_engine(url)
    with session_scope(engine) as session:
        scores = {A: {"exact_match": [None, 1.0, 0.0, 1.0]}}  # a missing score, no reason
        add_experiment(session, "fine", SUITE, scores)
        assert not [n for n in load_leaderboard(session, "fine").notes if "NOT SCORED" in n]


def test_a_detail_no_database_stores_is_stored_replaced(url: str) -> None:
    """A detail quotes what a model-written program printed or reported (a sandbox's
    last line, a test's reason): a NUL failed the storing of the scores on PostgreSQL,
    a lone surrogate on both databases (newcomers' S2/S3 in the details)."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        experiment = add_experiment(session, "odd", SUITE, {A: {"exact_match": [0.0] * 4}}).id
        first = int(generations_frame(session, experiment)["id"].min())
        details(session, [first], "exact_match", ["printed a\x00b and \ud800"])
    with session_scope(engine) as session:
        stored = score_details_frame(session, experiment)["detail"].tolist()
    assert stored == ["printed a\ufffdb and \ufffd"]
