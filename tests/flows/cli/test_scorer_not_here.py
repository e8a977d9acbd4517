"""A user's scorer whose code does not import where its results are read (a teammate
reads the database without the scorer's file; newcomer F9 of stop 72): `show`, `compare`,
`export`, `report` and `view` read its stored scores as it declared itself when it
scored (lower is better here), and say so once; `compare`, `export` and `report` refused
the experiment, and `show` and `view` ranked it as higher-is-better."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session

from evaluation.errors import ReadNote
from evaluation.metrics import _user, get_metrics
from evaluation.storage.db import make_engine
from evaluation.storage.scorers import keep_declarations
from flows.cli import main
from tests.conftest import REPO
from tests.support.databases import open_together, sqlite_or_postgres
from tests.support.results_db import add_experiment, make_config, make_suite
from tests.support.user_scorers import scorer_module

CHECKS = '''
from evaluation.metrics import scorer

@scorer(score_type="continuous", higher_is_better=False)
def words(case, output):
    """Words in the output (fewer is better)."""
    return float(len(output.split()))
'''
SMALL, BIG = make_config("small:1b"), make_config("big:8b")


@pytest.fixture
def words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """The metric of experiment "terse" in the database, scored by a lower-is-better
    scorer (small:1b's outputs have fewer words) whose module is gone since."""
    checks = scorer_module(tmp_path, monkeypatch, "gone_checks", CHECKS)
    module = next(checks)
    metric = f"{module}:words"
    engine = make_engine(database_url)
    with Session(engine) as session:
        scores = {SMALL: [1.0, 2.0, 1.0, 2.0, 1.0, 1.0], BIG: [6.0, 7.0, 6.0, 8.0, 6.0, 7.0]}
        terse = add_experiment(
            session, "terse", make_suite(6), {c: {metric: v} for c, v in scores.items()}
        )
        keep_declarations(session, get_metrics([metric]), terse.id)  # as a run's scoring does
        session.commit()
    engine.dispose()
    (tmp_path / f"{module}.py").unlink()  # the teammate's copy: no scorer's file
    sys.modules.pop(module, None)
    importlib.invalidate_caches()
    _user._loaded.cache_clear()
    yield metric
    next(checks, None)


def _note(metric: str) -> str:
    return (
        f"note: {metric}: its scorer's code is not importable here (cannot import "
        f"{metric.split(':')[0]}: No module named '{metric.split(':')[0]}'); read as it "
        "declared itself when it scored (continuous, lower is better): its scores as "
        "stored, nothing rescored"
    )


def test_show_ranks_by_the_stored_direction_and_says_so_once(
    words: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database", database_url, "show", "terse", "--wide"]) == 0
    said = capsys.readouterr()
    rows = [line for line in said.out.splitlines() if line.startswith("#")]
    assert "small:1b" in rows[0] and "big:8b" in rows[1]
    assert f"Ranked by {words} (lower is better)" in " ".join(said.out.split())
    assert said.err.count("note: ") == 1 and _note(words) in said.err


def test_compare_export_report_and_view_read_it_as_declared(
    words: str, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database", database_url]
    assert main([*db, "compare", "terse"]) == 0
    said = capsys.readouterr()
    assert f"small:1b (1.33) wins on {words}: significantly better" in said.out
    assert said.err.count("note: ") == 1 and _note(words) in said.err

    assert main([*db, "export", "terse", "--out", str(tmp_path / "out")]) == 0
    said = capsys.readouterr()
    assert said.err.count("note: ") == 1 and _note(words) in said.err
    scores = (tmp_path / "out" / "terse-scores.csv").read_text()
    assert scores.count(words) == 12

    report = tmp_path / "terse.html"
    assert main([*db, "report", "terse", "--out", str(report), "-q"]) == 0
    said = capsys.readouterr()
    assert said.err.count("note: ") == 1 and _note(words) in said.err
    assert words in report.read_text()

    assert main([*db, "view", "terse", "--export", str(tmp_path / "view")]) == 0
    assert capsys.readouterr().err.count("note: ") == 1
    pair = next((tmp_path / "view" / "compare").glob("*.html")).read_text()
    assert "(lower is better; case means" in pair


@pytest.mark.usefixtures("prefect_harness")
def test_compare_publish_reads_it_as_declared_as_compare_does(
    words: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `compare` flow (--publish) opened the database without the declarations, so
    the scorer was refused there ("cannot import ...", exit 2) where `compare` read it."""
    assert main(["--database", database_url, "compare", "terse", "--publish"]) == 0
    said = capsys.readouterr()
    assert f"small:1b (1.33) wins on {words}: significantly better" in said.out
    assert _note(words) in said.err and "published Prefect artifacts" in said.err
    assert _user.stored_declaration(words) is None  # forgotten after the command


def test_rescore_and_run_still_refuse_a_scorer_they_cannot_run(
    words: str, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database", database_url, "show", "terse"]) == 0  # declarations read
    capsys.readouterr()
    refused = f"metric '{words}': cannot import {words.split(':')[0]}: No module named"
    assert main(["--database", database_url, "rescore", "terse"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {refused}")

    spec = tmp_path / "terse.yaml"
    spec.write_text(
        f"name: terse\nsuite: {REPO / 'benchmarks/suites/qa-short.jsonl'}\n"
        f"models: [sim-small:1b]\nmetrics: ['{words}']\n"
        "hosts: [{name: sim, url: 'simulated://local', slots: 1, kind: simulated}]\n"
    )
    assert main(["--database", database_url, "run", str(spec)]) == 2
    said = capsys.readouterr().err
    assert "field 'metrics[0]'" in said and refused in said and "note:" not in said


def test_an_older_database_is_upgraded_and_a_read_only_one_read_without_declarations(
    words: str, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older evalflow's database has no declarations: where it may be written it gets
    their table on opening; read-only, it is read without it. Either way the scorer is
    read as before, saying why."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE scorer_declarations"))
        connection.execute(text("DROP TABLE experiment_scorer_declarations"))
    engine.dispose()
    path = database_url.removeprefix("sqlite:///")
    read_only = ["--database", f"sqlite:///file:{path}?mode=ro&uri=true"]

    assert main([*read_only, "show", "terse"]) == 0
    said = capsys.readouterr()
    assert f"Ranked by {words} (higher is better)" in " ".join(said.out.split())
    assert (
        f"note: {words}: ranked as higher is better, its direction not known here (metric "
        f"'{words}': cannot import"
    ) in said.err
    assert "keeps no scorers' declarations to read it with (an older evalflow" in said.err
    assert main([*read_only, "compare", "terse"]) == 2
    assert "keeps no scorers' declarations" in capsys.readouterr().err

    assert main(["--database", database_url, "compare", "terse"]) == 2  # writable: upgraded
    assert (
        "keeps no declaration of it to read it with (it was scored before evalflow kept them)"
    ) in capsys.readouterr().err
    assert inspect(create_engine(database_url)).has_table("scorer_declarations")


WORDY = CHECKS.replace("higher_is_better=False", "higher_is_better=True").replace(
    "fewer is better", "more is better"
)


def _add_wordy(words: str, database_url: str, tmp_path: Path) -> None:
    """Experiment "wordy", scored by a scorer named as "terse"'s that declares
    higher-is-better, whose module is gone since too."""
    module = words.split(":")[0]
    (tmp_path / f"{module}.py").write_text(WORDY)  # the scorer, as "wordy" scored with it
    importlib.invalidate_caches()
    _user._loaded.cache_clear()
    engine = make_engine(database_url)
    with Session(engine) as session:
        scores = {SMALL: [1.0, 2.0, 1.0, 2.0, 1.0, 1.0], BIG: [6.0, 7.0, 6.0, 8.0, 6.0, 7.0]}
        wordy = add_experiment(
            session, "wordy", make_suite(6), {c: {words: v} for c, v in scores.items()}
        )
        keep_declarations(session, get_metrics([words]), wordy.id)
        session.commit()
    engine.dispose()
    (tmp_path / f"{module}.py").unlink()
    sys.modules.pop(module, None)
    importlib.invalidate_caches()
    _user._loaded.cache_clear()


def test_two_experiments_each_read_their_own_declaration_of_a_same_named_scorer(
    words: str, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "terse" scored words as lower-is-better, then "wordy" scored a scorer of the same
    name that declares higher-is-better: keyed by metric name alone, the last scoring's
    direction was both experiments' ("terse" ranked big:8b first)."""
    _add_wordy(words, database_url, tmp_path)

    for name, first, direction in (("terse", SMALL, "lower"), ("wordy", BIG, "higher")):
        assert main(["--database", database_url, "show", name, "--wide"]) == 0
        said = capsys.readouterr()
        rows = [line for line in said.out.splitlines() if line.startswith("#")]
        assert first.model in rows[0], (name, said.out)
        assert f"Ranked by {words} ({direction} is better)" in " ".join(said.out.split())

    # one reading serves both (R5): the note said "as it declared itself" of both
    assert main(["--database", database_url, "compare", "terse", "wordy"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert said.count("note: ") == 1
    assert (
        "nothing rescored; the experiments read declared it otherwise (terse: continuous, "
        "lower is better; wordy: continuous, higher is better): all are read as wordy's, "
        "the latest"
    ) in said
    assert main(["--database", database_url, "compare", "terse"]) == 0
    assert "declared it otherwise" not in capsys.readouterr().err
    with create_engine(database_url).connect() as connection:  # as an older evalflow reads
        latest = connection.execute(
            text("SELECT metric, higher_is_better FROM scorer_declarations")
        )
        assert [tuple(row) for row in latest] == [(words, 1)]


def test_each_page_of_view_reads_its_own_experiments_declaration(
    words: str, database_url: str, tmp_path: Path
) -> None:
    """`view terse` serves every experiment's pages: a page of "wordy" read "terse"'s
    declaration of the scorer they share (its pair ranked as lower is better, as "terse"
    declared it), since the server remembered the declarations of the experiment it was
    started on first. Each experiment's page now reads its own."""
    from fastapi.testclient import TestClient

    from evaluation.metrics._stored import forget_declarations
    from evaluation.storage.scorers import remember_stored_declarations
    from evaluation.view.app import create_app

    _add_wordy(words, database_url, tmp_path)
    engine = make_engine(database_url)
    remember_stored_declarations(engine, ["terse"])  # as `evalflow view terse` does
    try:
        with pytest.warns(ReadNote), TestClient(create_app(engine)) as client:
            pages = {name: client.get(f"/e/{name}/compare").text for name in ("wordy", "terse")}
    finally:
        forget_declarations()
        engine.dispose()
    assert "(higher is better; case means" in pages["wordy"]
    assert "(lower is better; case means" in pages["terse"]


def test_an_older_table_keyed_by_metric_alone_is_read_as_it_is_and_left_so(
    words: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older evalflow's table (one row per metric name, no experiments' table): read
    as it is, read-only or not; opened where it may be written it is left as it is (an
    older evalflow sharing the database keeps writing it), the experiments' table added
    beside it, empty."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE scorer_declarations"))
        connection.execute(text("DROP TABLE IF EXISTS experiment_scorer_declarations"))
        connection.execute(text(OLDER_TABLE))
        connection.execute(
            text(OLDER_WRITE), {**_older_row(words, False), "when": "2026-01-01 00:00:00.000000"}
        )
    engine.dispose()
    path = database_url.removeprefix("sqlite:///")
    read_only = ["--database", f"sqlite:///file:{path}?mode=ro&uri=true"]
    for database in (read_only, ["--database", database_url]):
        assert main([*database, "show", "terse"]) == 0
        said = capsys.readouterr()
        assert f"Ranked by {words} (lower is better)" in " ".join(said.out.split())
        assert _note(words) in said.err
    inspector = inspect(create_engine(database_url))
    assert inspector.get_pk_constraint("scorer_declarations")["constrained_columns"] == ["metric"]
    assert "experiment_id" not in {c["name"] for c in inspector.get_columns("scorer_declarations")}
    with create_engine(database_url).connect() as connection:
        own = connection.execute(text("SELECT count(*) FROM experiment_scorer_declarations"))
        assert own.scalar() == 0


OLDER_TABLE = (  # scorer_declarations as effeb511 (and every evalflow since) creates it
    "CREATE TABLE scorer_declarations (metric VARCHAR NOT NULL PRIMARY KEY, score_type "
    "VARCHAR NOT NULL, higher_is_better BOOLEAN NOT NULL, corpus_level BOOLEAN NOT NULL, "
    "description VARCHAR NOT NULL, source VARCHAR NOT NULL, declared_at TIMESTAMP NOT NULL)"
)
OLDER_WRITE = (  # effeb511's keep_declarations: one row per metric name, the last scoring's
    "INSERT INTO scorer_declarations (metric, score_type, higher_is_better, corpus_level, "
    "description, source, declared_at) VALUES (:metric, 'continuous', :higher, false, "
    "'Words', :metric, :when) ON CONFLICT (metric) DO UPDATE SET higher_is_better = "
    "excluded.higher_is_better, declared_at = excluded.declared_at"
)


def _older_row(metric: str, higher: bool) -> dict[str, object]:
    return {"metric": metric, "higher": higher, "when": datetime.now(UTC).replace(tzinfo=None)}


@pytest.fixture(params=["sqlite", "postgresql"])
def older(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """A database as an older evalflow (effeb511) left it, and the metric: experiment
    "terse" scored by a lower-is-better scorer (small:1b first) whose module is gone since,
    its declaration kept in scorer_declarations by metric name alone, and no table of
    experiments' own declarations."""
    checks = scorer_module(tmp_path, monkeypatch, "older_checks", CHECKS)
    module = next(checks)
    metric = f"{module}:words"
    for url in sqlite_or_postgres(request.param, tmp_path / "older.db", "evalflow_older_decl"):
        engine = make_engine(url)
        with Session(engine) as session:
            scores = {SMALL: [1.0, 2.0, 1.0, 2.0, 1.0, 1.0], BIG: [6.0, 7.0, 6.0, 8.0, 6.0, 7.0]}
            add_experiment(
                session, "terse", make_suite(6), {c: {metric: v} for c, v in scores.items()}
            )
            session.commit()
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS experiment_scorer_declarations"))
            connection.execute(text("DROP TABLE scorer_declarations"))
            connection.execute(text(OLDER_TABLE))
            connection.execute(text(OLDER_WRITE), _older_row(metric, False))
        engine.dispose()
        (tmp_path / f"{module}.py").unlink()
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
        _user._loaded.cache_clear()
        yield url, metric
    next(checks, None)


def _ranked(url: str, metric: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--database", url, "show", "terse"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"Ranked by {metric}" in out
    return out.split(f"Ranked by {metric} (")[1].split(")")[0]


def test_an_older_evalflow_keeps_scoring_into_a_database_this_one_opened(
    older: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """R3: once this version had re-keyed scorer_declarations by experiment, an older
    evalflow sharing the database generated a whole run and failed at scoring ("ON
    CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint", exit 2). The
    table is left as older versions write it; their statement still works after."""
    url, metric = older
    assert _ranked(url, metric, capsys) == "lower is better"  # this version opened it
    engine = create_engine(url)
    with engine.begin() as connection:  # the older evalflow rescoring "terse", v1 now
        connection.execute(text(OLDER_WRITE), _older_row(metric, True))
    engine.dispose()
    assert _ranked(url, metric, capsys) == "higher is better"  # as the older evalflow reads it


def test_commands_opening_an_older_database_at_once_lose_nothing(
    older: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """R4: processes opening an older database together raced the re-key (UNIQUE
    failures, exit 2, or the table left empty: the declaration lost, the experiment
    ranked the wrong way after). Opening now only creates the experiments' table where
    it is missing (as any new table, CREATE TABLE's race retried: storage.db) and leaves
    scorer_declarations as it is; four processes released together by a barrier all open
    it. (On the old code this fails on the table's key, re-keyed, whether or not the
    race is lost in this run.)"""
    url, metric = older
    assert open_together(url, 4) == []
    inspector = inspect(create_engine(url))  # nothing rewritten: nothing to race on
    assert inspector.get_pk_constraint("scorer_declarations")["constrained_columns"] == ["metric"]
    assert inspector.has_table("experiment_scorer_declarations")
    with create_engine(url).connect() as connection:
        kept = connection.execute(text("SELECT metric, higher_is_better FROM scorer_declarations"))
        assert [(m, bool(h)) for m, h in kept] == [(metric, False)]
    assert _ranked(url, metric, capsys) == "lower is better"
