"""A run stored before impossible decode speeds were refused keeps its configs'
``tokens_per_s`` aggregate, a mean with the impossible value in (nc-r3: 8,388.2/s where
its cases ran at ~13/s). Opening the database brings it to what a sweep stores now
(``storage.impossible_rates``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlmodel import Session

from evaluation.compare._leaderboard import load_leaderboard, ranked_rows, render_markdown
from evaluation.storage.db import make_engine
from evaluation.storage.impossible_rates import forget_impossible_rates
from flows.cli.app import main
from tests.support.databases import sqlite_or_postgres
from tests.support.results_db import add_experiment, make_config, make_suite

FAST, SLOW = make_config("fast:1b"), make_config("slow:1b")
CASES = 6
# 6 tokens a generation in 1 s each; FAST's first said 0.12 ms of a 5.6 s request
SPEEDS = {FAST: [50_261.8, 17.0, 18.0, 19.0, 20.0, 21.0], SLOW: [12.0] * CASES}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres(request.param, tmp_path / "old.db", "evalflow_rates")


def _as_older_version_left_it(url: str) -> None:
    """A run with one impossible decode speed stored, and the aggregate an older
    evalflow computed from it: the arithmetic mean, the impossible value in."""
    engine = make_engine(url)
    with Session(engine) as session:
        add_experiment(
            session,
            "nc-r3",
            make_suite(CASES),
            {config: {"exact_match": [1.0] * CASES} for config in SPEEDS},
        )
        session.commit()
    with engine.begin() as connection:
        for config, speeds in SPEEDS.items():
            ids = connection.execute(
                text("SELECT id FROM generations WHERE config_hash = :c ORDER BY id"),
                {"c": config.hash},
            ).scalars()
            for i, speed in zip(ids, speeds, strict=True):
                connection.execute(
                    text(
                        "UPDATE generations SET eval_count = 6, latency_s = :l, "
                        "tokens_per_s = :v WHERE id = :i"
                    ),
                    {"i": i, "v": speed, "l": 5.589 if speed > 1000 else 1.0},
                )
            connection.execute(
                text(
                    "UPDATE aggregates SET n = :n, mean = :m WHERE config_hash = :c "
                    "AND metric = 'tokens_per_s'"
                ),
                {"n": CASES, "m": sum(speeds) / CASES, "c": config.hash},
            )
    engine.dispose()


def _aggregates(url: str) -> dict[str, tuple[int, float | None]]:
    engine = make_engine(url, create=False)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT config_hash, n, mean FROM aggregates WHERE metric = 'tokens_per_s'")
        ).all()
    engine.dispose()
    return {row.config_hash: (row.n, row.mean) for row in rows}


def test_an_older_runs_impossible_speed_leaves_its_stored_mean_on_opening(url):
    _as_older_version_left_it(url)
    older = _aggregates(url)  # make_engine(create=False) upgrades nothing
    assert older[FAST.hash] == (CASES, pytest.approx(8_392.8, abs=0.1))

    assert main(["show", "nc-r3", "--database", url]) == 0  # opening upgrades it

    engine = make_engine(url, create=False)
    with Session(engine) as session:  # the board show reads, the markdown artifact's too
        board = load_leaderboard(session, "nc-r3")
    engine.dispose()
    speeds = {row["config"]: row["tokens_per_s"] for row in ranked_rows(board)}
    assert speeds == {FAST.hash: pytest.approx(19.0), SLOW.hash: pytest.approx(12.0)}
    fast = next(line for line in render_markdown(board).splitlines() if FAST.hash in line)
    assert "| 19.0 |" in fast
    upgraded = _aggregates(url)
    assert upgraded[FAST.hash] == (5, pytest.approx(19.0))
    assert upgraded[SLOW.hash] == (CASES, pytest.approx(12.0))  # untouched
    engine = make_engine(url, create=False)
    assert forget_impossible_rates(engine) == 0  # once done, it finds nothing
    with engine.connect() as connection:
        nulls = connection.execute(
            text("SELECT count(*) FROM generations WHERE tokens_per_s IS NULL")
        ).scalar_one()
    engine.dispose()
    assert nulls == 1
    assert _aggregates(url) == upgraded


def test_a_read_only_database_is_read_as_it_is(tmp_path):
    """A teammate's read-only copy, written by the evalflow before this one, refuses the
    upgrade's writes (its new index too): shown, not refused."""
    path = tmp_path / "old.db"
    _as_older_version_left_it(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        connection.execute("DROP INDEX ix_generation_impossible_rate")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"

    assert main(["show", "nc-r3", "--database", read_only]) == 0

    assert _aggregates(read_only)[FAST.hash] == (CASES, pytest.approx(8_392.8, abs=0.1))
