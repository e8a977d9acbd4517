"""A results database from an older evalflow keeps its results when this version opens it:
new optional columns are added; columns nobody can fill are refused with nothing altered."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.storage.db import make_engine
from evaluation.storage.models import ConfigRow
from tests.support.databases import sqlite_or_postgres

# Added by the pipelines change: an older evalflow's configs table has none of them.
NEW_PARAMETERS = ("chunk_size", "chunk_overlap", "retrieve_k", "min_similarity", "parallel")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres(request.param, tmp_path / "old.db", "evalflow_upgrade")


def _as_older_version_left_it(url: str) -> None:
    """This version's schema with one config row, minus the columns added since."""
    current = make_engine(url)
    with Session(current) as session:
        session.add(ConfigRow(hash="abc", model="m:1b", label="old config"))
        session.commit()
    current.dispose()
    engine = create_engine(url)
    with engine.begin() as connection:
        for column in NEW_PARAMETERS:
            connection.execute(text(f"ALTER TABLE configs DROP COLUMN {column}"))
        connection.execute(text("ALTER TABLE stages DROP COLUMN wait_s"))  # issue 28.4
        connection.execute(text("ALTER TABLE experiment_runs DROP COLUMN command"))
        connection.execute(text("DROP TABLE dropped_configs"))  # configs a spec edit dropped
    engine.dispose()


def test_new_optional_columns_are_added_and_old_rows_kept(url: str) -> None:
    _as_older_version_left_it(url)

    engine = make_engine(url)

    columns = {c["name"] for c in inspect(engine).get_columns("configs")}
    assert set(NEW_PARAMETERS) <= columns
    with engine.connect() as connection:
        row = connection.execute(
            text(f"SELECT label, {', '.join(NEW_PARAMETERS)} FROM configs WHERE hash = 'abc'")
        ).one()
    assert row[0] == "old config"
    assert all(value is None for value in row[1:])
    assert "wait_s" in {c["name"] for c in inspect(engine).get_columns("stages")}
    assert "dropped_configs" in inspect(engine).get_table_names()
    engine.dispose()
    make_engine(url).dispose()  # a second open finds nothing to add


def test_a_column_nobody_can_fill_is_refused_and_nothing_altered(url: str) -> None:
    _as_older_version_left_it(url)
    engine = create_engine(url)
    with engine.begin() as connection:  # a required column the older version lacked
        connection.execute(text("DROP INDEX ix_configs_model"))
        connection.execute(text("ALTER TABLE configs DROP COLUMN model"))
    engine.dispose()

    with pytest.raises(StorageError, match=r"older evalflow: it lacks column configs\.model;"):
        make_engine(url)

    columns = {c["name"] for c in inspect(create_engine(url)).get_columns("configs")}
    assert not set(NEW_PARAMETERS) & columns  # the addable ones were not added either


def test_a_count_an_older_version_kept_not_null_may_be_null_and_old_values_stay(url: str) -> None:
    """``generations.prompt_eval_count`` was NOT NULL (a server that reported no count was
    stored as 0); now NULL means "not reported", and an older database takes a NULL."""
    from tests.support.review_db import build_review_db

    build_review_db(url, n_cases=2, temperatures=(0.0,)).engine.dispose()
    engine = create_engine(url)
    with engine.begin() as connection:  # as the older version declared it, with a value
        connection.execute(text("ALTER TABLE generations DROP COLUMN prompt_eval_count"))
        connection.execute(
            text("ALTER TABLE generations ADD COLUMN prompt_eval_count INTEGER NOT NULL DEFAULT 7")
        )
    engine.dispose()

    engine = make_engine(url)

    (column,) = [
        c for c in inspect(engine).get_columns("generations") if c["name"] == "prompt_eval_count"
    ]
    assert column["nullable"]
    with engine.begin() as connection:
        assert connection.execute(
            text("SELECT prompt_eval_count FROM generations")
        ).scalars().all() == [7, 7]
        connection.execute(text("UPDATE generations SET prompt_eval_count = NULL"))
    engine.dispose()
    make_engine(url).dispose()  # a second open finds nothing to change


def test_an_older_run_row_gets_no_command_and_show_builds_the_resume_one(url, capsys) -> None:
    """``experiment_runs.command`` (what `show` prints after "resume with:") is added to an
    older database; the runs stored before it have none and `show` builds the command
    from the stored spec as that version did; the next run stores its own."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.runs import RunProcess, claim_experiment, end_run
    from flows.cli import main
    from tests.support.results_db import register_unrun

    process = RunProcess.current()
    earlier = replace(process, pid=process.pid + 1)  # the older version's run: another process
    with session_scope(make_engine(url)) as session:
        claim_experiment(session, "old", earlier, command="evalflow run lost.yaml")
        register_unrun(session, "old", spec_name="old", spec_path="specs/old.yaml")
        end_run(session, "old", "interrupted", earlier, "interrupted by a signal")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE experiment_runs DROP COLUMN command"))
        connection.execute(text("DROP TABLE dropped_configs"))  # configs a spec edit dropped
    engine.dispose()

    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT command FROM experiment_runs")).all() == [(None,)]
    assert main(["--database", url, "show", "old"]) == 0
    # nothing of 'old' is stored, so the command starts it over (show says so since 515faa3)
    last_line = capsys.readouterr().out.splitlines()[-1]
    assert last_line.endswith("start it over with: evalflow run specs/old.yaml")
    with session_scope(engine) as session:  # the next run, with options run takes
        command = "evalflow run specs/old.yaml --time-scale 1 --interrupt-wait 2"
        claim_experiment(session, "old", process, command=command)
        end_run(session, "old", "interrupted", process, "interrupted by a signal")
    engine.dispose()
    assert main(["--database", url, "show", "old"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"start it over with: {command}")
