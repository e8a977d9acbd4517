"""A run's end leaves PostgreSQL's planner facts up to date (statistics, and the
visibility map that lets the case and group filters read generation ids from the
index alone), where autovacuum may be off or not yet round: the view's filters at a
million generations depend on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from evaluation.storage.db import make_engine, refresh_planner_facts
from tests.evaluation.view.test_search import _fill
from tests.support.databases import fresh_postgres_url


@pytest.fixture
def url() -> Iterator[str]:
    yield from fresh_postgres_url("evalflow_planner")


def test_a_run_end_vacuums_and_analyzes_generations_and_scores(url):
    engine = make_engine(url)
    _fill(engine)
    facts = text(
        "SELECT relname, last_vacuum IS NOT NULL, last_analyze IS NOT NULL "
        "FROM pg_stat_user_tables WHERE relname IN ('generations', 'scores') ORDER BY relname"
    )
    with engine.connect() as connection:
        assert [tuple(r) for r in connection.execute(facts)] == [
            ("generations", False, False),
            ("scores", False, False),
        ]
    refresh_planner_facts(engine)
    with engine.connect() as connection:
        assert [tuple(r) for r in connection.execute(facts)] == [
            ("generations", True, True),
            ("scores", True, True),
        ]
        visible = "SELECT relallvisible FROM pg_class WHERE relname = 'generations'"
        assert connection.exec_driver_sql(visible).scalar_one() > 0
    engine.dispose()
