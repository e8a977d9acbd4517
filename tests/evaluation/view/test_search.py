"""The view's text search through the search index (SQLite FTS5 trigram, PostgreSQL
pg_trgm): substrings and words of outputs, inputs and references found on both
databases, generations added, changed or deleted after the index was built found as
they are now, and a database made before the index gets it filled from its rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, inspect, text
from sqlmodel import Session

from evaluation.storage import text_search
from evaluation.storage.db import make_engine
from evaluation.storage.models import (
    CaseRow,
    ConfigRow,
    Experiment,
    ExperimentConfig,
    Generation,
    SuiteRow,
)
from evaluation.storage.text_search import FTS_TABLE, TRIGRAM_INDEX, UPTO_TABLE
from evaluation.view import queries
from evaluation.view.queries import Filters, generation_page
from tests.support.databases import sqlite_or_postgres

OUTPUTS = {
    "c1": "The capital of France is Paris.",
    "c2": "Bonjour! It is PARISIAN weather today.",
    "c3": 'She said "quote" and 100% of it.',
    "c4": "Nothing to see here.",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres(request.param, tmp_path / "search.db", "evalflow_search")


def _fill(engine) -> int:
    with Session(engine) as session:
        session.add(SuiteRow(name="s", version="1", task_type="qa"))
        session.add_all(
            CaseRow(
                uid=f"s/{c}",
                suite="s",
                case_id=c,
                input_text=f"Question {c}: name the city by the river",
                references=["Lyon" if c == "c4" else "Paris"],
            )
            for c in OUTPUTS
        )
        experiment = Experiment(name="e", suite="s", task_type="qa")
        session.add(experiment)
        session.add(ConfigRow(hash="h1", model="m:1b", label="m"))
        session.flush()
        session.add(ExperimentConfig(experiment_id=experiment.id, config_hash="h1"))
        session.add_all(
            Generation(experiment_id=experiment.id, config_hash="h1", case_uid=f"s/{c}", output=o)
            for c, o in OUTPUTS.items()
        )
        session.commit()
        return int(experiment.id)


def _found(engine, experiment_id: int, needle: str) -> list[str]:
    with Session(engine) as session:
        page = generation_page(session, experiment_id, Filters(text=needle), per_page=100)
    return sorted(r["case_id"] for r in page.rows)


def test_search_finds_substrings_and_words_of_output_input_and_reference(url):
    engine = make_engine(url)
    e = _fill(engine)
    assert _found(engine, e, "paris") == ["c1", "c2", "c3"]  # c3: its reference
    assert _found(engine, e, "ital of fra") == ["c1"]  # inside words, across a space
    assert _found(engine, e, "arisian") == ["c2"]  # case-insensitive
    assert _found(engine, e, '"quote"') == ["c3"]  # quotes are characters
    assert _found(engine, e, "100%") == ["c3"]  # so are LIKE's wildcards
    assert _found(engine, e, "0%") == ["c3"]  # two characters: below a trigram
    assert _found(engine, e, "lyon") == ["c4"]  # a reference
    assert _found(engine, e, "by the river") == ["c1", "c2", "c3", "c4"]  # every input
    assert _found(engine, e, "zebra") == []
    engine.dispose()


def test_search_sees_generations_added_changed_and_deleted_after_the_index(url):
    engine = make_engine(url)
    e = _fill(engine)
    assert _found(engine, e, "marseille") == []
    with Session(engine) as session:
        session.add(CaseRow(uid="s/c5", suite="s", case_id="c5", input_text="?"))
        session.flush()
        session.add(
            Generation(experiment_id=e, config_hash="h1", case_uid="s/c5", output="Marseille")
        )
        changed = session.exec(
            text("SELECT id FROM generations WHERE case_uid = 's/c4'")
        ).scalar_one()
        session.get(Generation, changed).output = "Perhaps Marseille."
        session.exec(delete(Generation).where(Generation.case_uid == "s/c1"))
        session.commit()
    assert _found(engine, e, "marseille") == ["c4", "c5"]
    assert _found(engine, e, "nothing to see") == []  # c4's old output
    assert _found(engine, e, "capital of france") == []  # c1, deleted
    engine.dispose()


def test_a_database_made_before_the_index_gets_it_filled_from_its_rows(url):
    engine = make_engine(url)
    e = _fill(engine)
    with engine.begin() as connection:  # as an older evalflow left it
        if engine.dialect.name == "sqlite":
            for name in ("delete", "update"):
                connection.exec_driver_sql(f"DROP TRIGGER {FTS_TABLE}_{name}")
            connection.exec_driver_sql(f"DROP TABLE {FTS_TABLE}")
            connection.exec_driver_sql(f"DROP TABLE {UPTO_TABLE}")
            connection.exec_driver_sql("DROP INDEX ix_generation_case_id")
        else:
            connection.exec_driver_sql(f"DROP INDEX {TRIGRAM_INDEX}")
            connection.exec_driver_sql("DROP INDEX ix_generation_case_id")
    engine.dispose()
    engine = make_engine(url)
    indexes = {i["name"] for i in inspect(engine).get_indexes("generations")}
    assert "ix_generation_case_id" in indexes
    if engine.dialect.name == "sqlite":
        assert FTS_TABLE in inspect(engine).get_table_names()
    else:
        assert TRIGRAM_INDEX in indexes
    assert _found(engine, e, "ital of fra") == ["c1"]
    engine.dispose()


def test_a_count_past_the_cap_says_so_and_still_pages_on(monkeypatch, tmp_path):
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    engine = make_engine(f"sqlite:///{tmp_path / 'cap.db'}")
    e = _fill(engine)
    with Session(engine) as session:
        first = generation_page(session, e, per_page=1)
        third = generation_page(session, e, per_page=1, page=3)
        last = generation_page(session, e, per_page=1, page=4)
        few = generation_page(session, e, Filters(text="paris"), per_page=5)
    assert (first.total, first.exact, first.total_text, first.more) == (2, False, "2+", True)
    assert third.more and not last.more and len(last.rows) == 1
    assert (few.total, few.exact, few.more) == (2, False, False)
    engine.dispose()


def test_a_common_text_is_searched_output_by_output_with_the_same_rows(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'common.db'}")
    e = _fill(engine)
    by_index = _found(engine, e, "paris")
    monkeypatch.setattr(text_search, "NARROW", 1)  # every text counts as common
    assert _found(engine, e, "paris") == by_index == ["c1", "c2", "c3"]
    assert _found(engine, e, "ital of fra") == ["c1"]
    engine.dispose()


def test_search_results_mark_the_term_and_show_a_long_input_around_it(tmp_path):
    """The cells showed each text's start only, the term unmarked: a match on line 30 of
    a long input was not on the page at all."""
    from fastapi.testclient import TestClient

    from evaluation.view.app import create_app
    from tests.support.review_db import build_review_db

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=3)
    with Session(db.engine) as session:
        case = session.get(CaseRow, f"{db.suite.name}/c01")
        case.input_text = "".join(f"Context line {i}.\n" for i in range(60)) + "The Zebra <b>"
        session.commit()
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}", params={"q": "zebra"})
    assert page.status_code == 200
    cell = page.text[page.text.index('<td class="input"><pre>') :].split("</pre>")[0]
    assert cell.startswith('<td class="input"><pre>…') and "Context line 1.\n" not in cell
    assert "The <mark>Zebra</mark> &lt;b&gt;" in cell  # the match as written, escaped
    city = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}", params={"q": "city 2"})
    assert '<td class="output"><pre><mark>City 2</mark></pre>' in city.text
    assert '<td class="reference"><pre><mark>City 2</mark></pre>' in city.text
    assert "<mark>" not in TestClient(create_app(db.engine)).get(f"/e/{db.experiment}").text


def test_an_excerpt_starts_at_the_line_of_the_match():
    text = "first line\n" + "x" * 500 + "\nthe needle here\n" + "y" * 500
    shown = queries.excerpt(text, "NEEDLE")
    assert shown.startswith("…the needle here\n") and shown.endswith("…")
    assert queries.excerpt("short needle text", "needle") == "short needle text"
