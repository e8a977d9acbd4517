"""A metric of one's own that raises: `run`, `show` and `rescore` say how many of its
scores are missing and why, its corpus function's too (newcomer F8: `boom` raised on 28
of 28 generations, exit 0, nothing on stderr, a column of "–" in the --wide table,
nothing else said)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from flows.cli import main
from tests.conftest import REPO
from tests.support.user_scorers import scorer_module

pytestmark = pytest.mark.usefixtures("prefect_harness")

CHECKS = """
from evaluation.metrics import scorer

@scorer(score_type="continuous", higher_is_better=True)
def boom(case, output):
    raise RuntimeError("kaboom")

@scorer(score_type="binary", higher_is_better=True)
def seven(case, output):
    return 7 if case.id.endswith("1") else 1

def _share(cases, outputs):
    raise ZeroDivisionError("no cases")

@scorer(score_type="continuous", higher_is_better=True, corpus=_share)
def headline(case, output):
    return 1.0
"""


@pytest.fixture
def checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from scorer_module(tmp_path, monkeypatch, "unscored_checks", CHECKS)


def test_run_show_and_rescore_say_a_scorer_that_failed(
    tmp_path: Path, capsys, database_url: str, checks: str
) -> None:
    spec = tmp_path / "boom.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "boomy",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["sim-small:1b"],
                "grid": {"temperature": [0.0, 0.7], "num_predict": [64]},
                "metrics": ["exact_match", f"{checks}:boom"],
                "hosts": [
                    {"name": "sim", "url": "simulated://local", "slots": 2, "kind": "simulated"}
                ],
            }
        )
    )
    db = ["--database", database_url]
    assert main([*db, "run", str(spec), "--limit", "3", "-q"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the lines wrap at the width
    flag = (
        f"NOT SCORED: {checks}:boom raised on 6 of 6 generations (RuntimeError: kaboom): "
        "those scores are missing, the reason kept with each output (evalflow view boomy)"
    )
    assert flag in out
    assert (
        f"warning: metric {checks}:boom has no score on some generations: a scorer failed "
        "(NOT SCORED above)"
    ) in out

    assert main([*db, "show", "boomy"]) == 0
    assert flag in " ".join(capsys.readouterr().out.split())
    with create_engine(database_url).connect() as connection:  # read where it does not import
        kept = connection.execute(text("SELECT * FROM scorer_declarations")).mappings().all()
    assert [(k["metric"], k["score_type"], k["higher_is_better"], k["source"]) for k in kept] == [
        (f"{checks}:boom", "continuous", 1, f"{checks}:boom")
    ]

    rescored = f"{checks}:seven,{checks}:headline"
    assert main([*db, "rescore", "boomy", "--metrics", rescored]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert flag in out  # boom's scores stay as they were: still missing
    assert (
        f"NOT SCORED: {checks}:seven could not score 2 of 6 generations (a binary scorer "
        "returns 0 or 1 (or True/False), got 7)"
    ) in out
    assert (  # a corpus function's failure: the headline's column was "–" too
        f"NOT SCORED: {checks}:headline's corpus function raised ZeroDivisionError: no cases, "
        "on 2 of 2 configs: those corpus values are missing"
    ) in out
    names = f"{checks}:boom, {checks}:seven, {checks}:headline"
    assert f"warning: metrics {names} have no score" in out
