"""A run stored before impossible decode speeds were refused keeps its configs'
``tokens_per_s`` aggregate, a mean with the impossible value in (nc-r3: 8,388.2/s where
its cases ran at ~13/s). Opening the database brings it to what a sweep stores now
(``storage.impossible_rates``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session

from evaluation.compare._leaderboard import load_leaderboard, ranked_rows, render_markdown
from evaluation.storage.db import make_engine
from evaluation.storage.impossible_rates import _IMPOSSIBLE_ROWS, forget_impossible_rates
from evaluation.storage.repository import generation_facts_frame, generations_frame, get_experiment
from flows.cli.app import main
from tests.support.databases import query_plan, sqlite_or_postgres
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


def _with_the_older_index(url: str) -> None:
    """The partial index as the evalflow before the decode window made it: its rule on
    the whole request's latency, under its older name."""
    engine = make_engine(url, create=False)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_generation_impossible_decode"))
        connection.execute(text(OLDER_INDEX))
    engine.dispose()


OLDER_INDEX = (
    "CREATE INDEX ix_generation_impossible_rate ON generations (id) WHERE latency_s > 0 "
    "AND tokens_per_s * latency_s > 1000 * eval_count"
)


def _plan(url: str) -> str:
    """How the database plans the upgrade's search, and its impossible-rate indexes."""
    engine = make_engine(url, create=False)
    indexes = {i["name"] for i in inspect(engine).get_indexes("generations")}
    engine.dispose()
    named = sorted(i for i in indexes if "impossible" in i)
    return f"{query_plan(url, _IMPOSSIBLE_ROWS.text)} | indexes: {named}"


def test_an_older_databases_index_gives_way_to_the_decode_windows(url):
    """The older index's condition (the whole request's latency) matches no query of this
    version's: kept, every open would scan every generation for impossible speeds.
    Opened for writing, the database gets this version's index and loses the older."""
    make_engine(url).dispose()
    _with_the_older_index(url)
    assert "ix_generation_impossible_decode" not in _plan(url)
    make_engine(url).dispose()
    plan = _plan(url)
    assert "USING INDEX ix_generation_impossible_decode" in plan or (
        "Index Scan on ix_generation_impossible_decode" in plan
    ), plan
    assert "ix_generation_impossible_rate" not in plan


def test_a_fast_decode_after_a_long_wait_is_kept_on_opening_and_by_every_reader(url):
    """A generation that waited 0.27 s for its first token and decoded 12 tokens in
    0.25 ms of the ~1 ms left (CI's tiny model on a loaded machine): possible, kept by the
    upgrade and read by every reader; F1's 6 tokens in 0.12 ms of a stream's last 0.29 s
    are not."""
    _as_older_version_left_it(url)
    engine = make_engine(url, create=False)
    with engine.begin() as connection:
        fast, f1 = connection.execute(
            text("SELECT id FROM generations WHERE config_hash = :c ORDER BY id LIMIT 2"),
            {"c": SLOW.hash},
        ).scalars()
        waited = "UPDATE generations SET eval_count = :n, latency_s = :l, ttft_s = :t, "
        connection.execute(
            text(waited + "tokens_per_s = :v WHERE id = :i"),
            [
                {"i": fast, "n": 12, "l": 0.2755556, "t": 0.2745883, "v": 47_500.9},
                {"i": f1, "n": 6, "l": 5.589, "t": 5.3, "v": 50_261.8},
            ],
        )
    engine.dispose()

    engine = make_engine(url)  # opening upgrades it
    with Session(engine) as session:
        experiment = get_experiment(session, "nc-r3").id
        frames = (
            generations_frame(session, experiment),
            generation_facts_frame(session, experiment),
        )
    with engine.connect() as connection:
        stored = dict(
            connection.execute(text("SELECT id, tokens_per_s FROM generations")).tuples().all()
        )
    engine.dispose()
    assert stored[fast] == pytest.approx(47_500.9) and stored[f1] is None
    for frame in frames:
        speeds = frame["tokens_per_s"]
        assert speeds.max() == pytest.approx(47_500.9)
        assert speeds.isna().sum() == 2  # F1 and FAST's first (the fixture's)


def test_a_read_only_database_is_read_as_it_is(tmp_path):
    """A teammate's read-only copy, written by the evalflow before this one, refuses the
    upgrade's writes (its new index, the older one's drop): shown, not refused."""
    path = tmp_path / "old.db"
    _as_older_version_left_it(f"sqlite:///{path}")
    _with_the_older_index(f"sqlite:///{path}")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"

    assert main(["show", "nc-r3", "--database", read_only]) == 0

    assert _aggregates(read_only)[FAST.hash] == (CASES, pytest.approx(8_392.8, abs=0.1))
