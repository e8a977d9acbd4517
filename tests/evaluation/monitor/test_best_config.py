"""The monitor's best config of a run is the one its leaderboard ranks first: ties on the
headline mean go to the lower median latency, and configs the spec dropped are not in it
(a newcomer saw the monitor name t=0.7 where the leaderboard ranked t=0 first)."""

from __future__ import annotations

from sqlalchemy import update

from evaluation.compare._leaderboard import load_leaderboard, ranked_rows
from evaluation.monitor._summary import summarize
from evaluation.storage.db import session_scope
from evaluation.storage.dropped import set_experiment_configs
from evaluation.storage.models import Aggregate
from tests.support.review_db import build_review_db


def _set(session, experiment_id: int, config: str, metric: str, mean: float) -> None:
    session.exec(
        update(Aggregate)
        .where(
            Aggregate.experiment_id == experiment_id,
            Aggregate.config_hash == config,
            Aggregate.metric == metric,
        )
        .values(mean=mean)
    )


def test_the_monitor_names_the_leaderboards_first_config(tmp_path):
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=4)
    first, second, third = (c.hash for c in db.configs)
    with session_scope(db.engine) as session:
        # A tie on the headline metric (to 12 digits, as the leaderboard ties), the second
        # config faster; the third best of all but dropped by the spec's last edit.
        tied = ((first, 0.75 + 1e-13, 0.32), (second, 0.75, 0.31))
        for config, mean, p50 in (*tied, (third, 1.0, 0.1)):
            _set(session, db.experiment_id, config, "exact_match", mean)
            _set(session, db.experiment_id, config, "latency_p50_s", p50)
        set_experiment_configs(session, db.experiment_id, db.configs[:2])
    with session_scope(db.engine) as session:
        board = load_leaderboard(session, db.experiment)
        leader = ranked_rows(board)[0]
        (summary,) = summarize(session, [db.experiment_id])
    assert leader["config"] == second
    # named as `show` names it (its short label), not by its full label (newcomer N5)
    assert board.labels[second] != leader["label"]
    assert (summary["metric"], summary["best_config"], summary["best_mean"]) == (
        "exact_match",
        board.labels[second],
        0.75,
    )


def test_a_summary_counted_by_an_older_ranking_is_counted_again(tmp_path):
    """A summary stored before the best config was the leaderboard's first (0f6ddb3) kept
    its old best config while the experiment did not change: its columns say it was
    counted the old way, so the monitor counts it again on its next page."""
    from sqlalchemy import text

    from evaluation.monitor._summary import refresh_summaries, store_summary
    from evaluation.storage.db import make_engine
    from evaluation.storage.models import RunSummary

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(url, n_cases=4)
    with session_scope(db.engine) as session:
        store_summary(session, db.experiment_id)
    with db.engine.begin() as connection:  # as an evalflow before the version stamp left it
        connection.execute(text("ALTER TABLE run_summaries DROP COLUMN counted_by"))
        connection.execute(text("UPDATE run_summaries SET best_config = 'old pick'"))
    engine = make_engine(url)  # the column comes back: 0, counted before it was stored
    with session_scope(engine) as session:
        assert refresh_summaries(session) == 1
    with session_scope(engine) as session:
        board = load_leaderboard(session, db.experiment)
        leader = ranked_rows(board)[0]
        shown = board.labels[leader["config"]]
        assert session.get(RunSummary, db.experiment_id).best_config == shown
        assert refresh_summaries(session) == 0  # counted this way now: kept


def test_a_read_only_copy_with_summaries_to_count_reads_its_home_page(tmp_path):
    """Recheck R1: a read-only copy (``mode=ro``, rollback journal, as a teammate gets it)
    of a database whose run's summary was never stored (a run killed with -9): the home
    page counted it and stored it, the write was refused, and `/` answered HTTP 500 with
    the INSERT's traceback. Now nothing is stored and the page reads what is there."""
    import sqlite3
    from urllib.parse import quote

    from evaluation.monitor._home import home
    from evaluation.monitor._summary import refresh_summaries
    from evaluation.storage.db import make_engine
    from evaluation.storage.models import RunSummary

    path = tmp_path / "r.db"
    db = build_review_db(f"sqlite:///{path}", n_cases=4)
    db.engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    engine = make_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true", reads_only=True)
    with session_scope(engine) as session:
        assert refresh_summaries(session) == 0
        shown = home(session)
        assert shown.experiments == 1 and shown.catching_up == 0
        assert session.get(RunSummary, db.experiment_id) is None
    engine.dispose()
