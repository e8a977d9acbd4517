"""`evalflow run --level/--limit` and a race spec's bad fields: one line, exit 2."""

import pytest
import yaml

from flows.cli import main


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--limit", "0"], "argument --limit: expected a whole number >= 1, got '0'"),
        (["--limit", "x"], "argument --limit: expected a whole number >= 1, got 'x'"),
        (["--level", "half"], "argument --level: invalid choice: 'half'"),
    ],
)
def test_bad_level_or_limit_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as info:
        main(["run", str(tmp_path / "spec.yaml"), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_bad_race_field_is_refused_before_anything_runs(tmp_path, capsys):
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"name": "t", "suite": str(suite), "models": ["m"], "strategy": "race", "delta": -1}
        )
    )
    assert main(["run", str(spec), "--level", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "field 'delta'" in err and "must be in [0, 1)" in err and err.count("\n") == 1


@pytest.fixture(params=["sqlite-not-there", "sqlite-empty-file", "postgresql"])
def fresh_database(request, tmp_path):
    """A results database with nothing in it: a SQLite file not created yet, an empty
    (0-byte) SQLite file, a PostgreSQL database just created (gate_..., dropped after)."""
    from tests.support.databases import fresh_postgres_url

    path = tmp_path / "results.db"
    if request.param == "postgresql":
        yield from fresh_postgres_url("gate")
        return
    if request.param == "sqlite-empty-file":
        path.touch()
    yield f"sqlite:///{path}"


def test_a_run_whose_hosts_refuse_makes_no_table_in_a_fresh_database(
    fresh_database, tmp_path, capsys, monkeypatch
):
    """ncmon-3's side effect: its series check (7e86329a) opened the database before the
    hosts were asked, creating evalflow's tables, so a run refused by its hosts left a
    fresh PostgreSQL database (or an empty SQLite file) with 30 empty tables. A database
    that holds no experiment has no rerun to refuse: the refusal writes nothing."""
    from sqlalchemy import create_engine, inspect

    from tests.conftest import REPO

    suite = REPO / "benchmarks/suites/qa-short.jsonl"
    spec = tmp_path / "spec.yaml"
    host = {"name": "gone", "url": "http://127.0.0.1:9", "kind": "ollama"}  # refuses
    spec.write_text(
        yaml.safe_dump({"name": "t", "suite": str(suite), "models": ["m"], "hosts": [host]})
    )
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no server started
    assert main(["--database", fresh_database, "run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach any host for model 'm'" in err and err.count("\n") == 1
    if fresh_database.startswith("sqlite"):
        path = tmp_path / "results.db"
        assert not path.exists() or path.stat().st_size == 0
        return
    engine = create_engine(fresh_database)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_rerun_into_another_series_is_refused_before_its_hosts_are_asked(
    database_url, capsys, monkeypatch
):
    """Newcomers' ncmon-3: `run --series other` of an experiment of another series was
    refused only after the host check, 48.5 s waiting on a busy llama.cpp host, for a
    refusal the results database alone decides. Refused before the hosts are asked."""
    import evaluation.run._preflight as preflight
    from evaluation.storage.db import make_engine, session_scope
    from tests.conftest import REPO
    from tests.support.results_db import add_experiment, make_config, make_suite

    engine = make_engine(database_url)
    with session_scope(engine) as session:  # joined its spec's series, 'night'
        add_experiment(session, "night", make_suite(2), {make_config(): {"contains": [1, 0]}})
    engine.dispose()

    def asked(sweep):
        raise AssertionError("the hosts were asked first")

    monkeypatch.setattr(preflight, "check_before_run", asked)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no server started
    spec = str(REPO / "benchmarks/sweeps/demo-simulated.yaml")
    argv = ["run", spec, "--experiment", "night", "--series", "other"]
    assert main(["--database", database_url, *argv]) == 2
    assert capsys.readouterr().err == (
        "error: --series other: experiment 'night' belongs to series 'night', and a rerun "
        "keeps it; run it again without --series, or give a new --experiment to join "
        "'other'\n"
    )
