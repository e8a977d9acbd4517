"""Item banks refused in one line, exit 2, nothing written: a suite never run, too few
configs, a level that needs a bank with none, more cases than the suite."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sqlalchemy import func, select

from evaluation.itembank._bank import Scores
from evaluation.itembank.schema import ItemBank
from evaluation.series.schema import SeriesRun
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import ConfigPipeline, ConfigRow
from flows.cli import main
from tests.support.itembank_db import build


def _banks(url: str) -> int:
    engine = make_engine(url)
    with session_scope(engine) as session:
        found = session.exec(select(func.count()).select_from(ItemBank)).scalar()
    engine.dispose()
    return found


def _one_line(capsys) -> str:
    """The refusal's one line on stderr; nothing on stdout before it (no plan, no note)."""
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    assert out == "", out
    return err


def test_a_bank_for_a_suite_never_run(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=2, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", "trivia"]) == 2
    assert "no suite named 'trivia' has been run" in _one_line(capsys)


def test_a_bank_for_a_suite_file_suggests_its_name(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=2, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", str(tmp_path / "toy.jsonl")]) == 2
    assert "a suite is named, not its file: did you mean 'toy'?" in _one_line(capsys)


def test_too_few_configs_says_the_minimum(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=3, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", "toy"]) == 2
    assert "an item bank needs at least 8" in _one_line(capsys)
    assert _banks(url) == 0


def _spec(tmp_path, n_cases: int = 12):
    suite = tmp_path / "toy.jsonl"
    suite.write_text(
        "".join(
            f'{{"id": "c{i:03d}", "input": "q {i}", "references": ["a"]}}\n' for i in range(n_cases)
        )
    )
    (tmp_path / "toy.suite.yaml").write_text(
        "name: toy\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "suite": str(suite),
                "models": ["sim-small:1b"],
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )
    return spec


def test_a_calibrated_level_without_a_bank(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=2, n_cases=12, sub_cases=())
    spec = _spec(tmp_path)
    assert main(["--database", url, "plan", str(spec), "--level", "calibrated"]) == 2
    assert "needs an item bank for suite 'toy' on 'exact_match' and there is none" in _one_line(
        capsys
    )
    assert main(["--database", url, "run", str(spec), "--level", "calibrated"]) == 2
    err = _one_line(capsys)  # 2 configs ran the full suite: `bank` would be refused
    assert "from at least 8 configs that ran the full suite and 2 did: run 6 more" in err
    assert "then `evalflow bank toy --metric exact_match`" in err
    assert _banks(url) == 0


def test_without_a_bank_but_enough_results_the_hint_is_the_bank_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=())
    spec = _spec(tmp_path)
    assert main(["--database", url, "run", str(spec), "--level", "calibrated"]) == 2
    assert "none: `evalflow bank toy --metric exact_match` calibrates one" in _one_line(capsys)


def test_show_on_a_metric_without_a_bank_names_the_metrics_with_one(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", "toy"]) == 0
    engine = make_engine(url)
    with session_scope(engine) as session:  # as if it had been calibrated on another
        session.exec(select(ItemBank)).scalars().one().metric = "contains"
    engine.dispose()
    capsys.readouterr()
    assert main(["--database", url, "bank", "toy", "--show", "--metric", "exact_match"]) == 0
    out = capsys.readouterr().out
    assert "no item bank for suite 'toy' on 'exact_match' (banks on: contains;" in out
    assert "`evalflow bank toy --show --metric contains` shows one" in out
    assert "then" not in out and "`evalflow bank toy --metric exact_match` calibrates" in out


def test_plan_over_the_suite_with_a_bank_prints_no_plan_first(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", "toy"]) == 0
    capsys.readouterr()
    spec = _spec(tmp_path)
    args = ["--database", url, "plan", str(spec), "--level", "calibrated", "--cases", "100"]
    assert main(args) == 2
    assert "--cases 100 is more than the suite's 12 cases" in _one_line(capsys)


def test_more_cases_than_the_suite(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    spec = _spec(tmp_path)
    assert (
        main(["--database", url, "plan", str(spec), "--level", "calibrated", "--cases", "13"]) == 2
    )
    assert "--cases 13 is more than the suite's 12 cases" in _one_line(capsys)


def test_options_that_apply_only_to_the_calibrated_level(tmp_path, capsys):
    spec = _spec(tmp_path)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["--database", url, "run", str(spec), "--cases", "5"]) == 2
    assert "--cases applies only to --level calibrated (this is --level full)" in _one_line(capsys)
    assert main(["--database", url, "plan", str(spec), "--level", "subset", "--width", "0.2"]) == 2
    assert "--width applies only to --level calibrated" in _one_line(capsys)
    assert not (tmp_path / "r.db").exists()


def test_a_bank_without_a_database_leaves_no_file(tmp_path, capsys):
    path = tmp_path / "none.db"
    assert main(["--database", f"sqlite:///{path}", "bank", "toy"]) == 2
    assert "no suite named 'toy' has been run" in _one_line(capsys)
    assert not path.exists()


def test_a_bank_on_pipelines_only_says_why(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=())
    engine = make_engine(url)
    with session_scope(engine) as session:
        hashes = session.exec(select(ConfigRow.hash)).scalars().all()
        session.add_all(ConfigPipeline(config_hash=h, pipeline="rag") for h in hashes)
    engine.dispose()
    assert main(["--database", url, "bank", "toy"]) == 2
    assert "was run only by pipelines: a pipeline's cases are not exchangeable" in _one_line(capsys)
    assert _banks(url) == 0


def test_too_few_configs_after_a_suite_change_says_the_older_runs_were_left_out(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=(0, 6))
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.add(SeriesRun(experiment="history", series="h", suite="toy", suite_digest="o+x"))
    engine.dispose()
    assert main(["--database", url, "bank", "toy"]) == 2
    err = _one_line(capsys)
    assert "has 0 configs with at least half its 12 cases scored on 'exact_match'" in err
    assert "calibrated on the suite's content as last run (" in err
    assert "the 1 experiment(s) that ran other content were left out" in err


def test_plan_on_changed_suite_content_falls_back_with_the_suite_named(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", "toy"]) == 0
    capsys.readouterr()
    spec = _spec(tmp_path)  # the same suite name, other content than the bank's
    assert main(["--database", url, "plan", str(spec), "--level", "calibrated"]) == 0
    out = capsys.readouterr().out
    assert "differs from what item bank v1 was calibrated on (this ran " in out
    assert "configs run on that content in full, then `evalflow bank toy`" in out
    assert "calibrated a 95% interval" not in out  # no width from the other content's bank


def test_what_a_bank_leaves_out_is_said() -> None:
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    w = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    scores = Scores("toy", "exact_match", "d", ["a", "b", "c"], ["x", "y"], ["m", "m"], y, w, 2, 1)
    notes = "\n".join(scores.notes())
    assert "1 of the 3 cases have no 'exact_match' score from any config" in notes
    assert "suite 'toy' is calibrated on its content as last run (d): 2 experiment(s)" in notes
    assert "1 pipeline config(s) left out" in notes


def test_help_says_the_level_runs_the_seeded_stratified_order(capsys):
    for verb in ("bank", "run", "plan"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "10% of the cases" in text and "seeded stratified order" in text, verb
        assert "most informative" not in text
