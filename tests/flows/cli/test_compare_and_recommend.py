"""What a newcomer found in `evalflow compare` and `recommend`: a baseline the --config
selection left out, --baseline given twice, an experiment named twice, a selector
version that does not exist; each answered in the CLI's own words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from selection._db import engine_for
from selection.recommender import _spans
from selection.schema import SelectorVersion
from tests.support.results_db import add_experiment, make_config, make_suite

A, B, C = make_config("big:8b"), make_config("mid:3b"), make_config("small:1b")


@pytest.fixture
def three(database_url: str) -> str:
    """An experiment "three" of three configs, 12 cases."""
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        scores = {
            A: {"exact_match": [1.0] * 12},
            B: {"exact_match": [float(i % 2) for i in range(12)]},
            C: {"exact_match": [float(i % 3 == 0) for i in range(12)]},
        }
        add_experiment(session, "three", make_suite(12), scores)
    engine.dispose()
    return database_url


def run(capsys: pytest.CaptureFixture[str], database: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--database", database, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_baseline_left_out_of_config_is_compared_with_each_config(three, capsys):
    """`--config big --config mid --baseline small` was refused ("not among the compared
    configs"); the baseline is compared with each selected config instead."""
    code, out, err = run(
        capsys, three, "compare", "three", "--config", "big:8b", "--config", "mid:3b",
        "--baseline", "small:1b", "--all",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"Comparison: three:{A.label}-vs-three:{B.label}-vs-three:{C.label}, baseline {C.label}"
    )
    rows = [line.split()[:2] for line in out.splitlines()]  # a table row: A, B, ...
    pairs = [row for row in rows if row[:1] in (["big:8b"], ["mid:3b"], ["small:1b"])]
    assert pairs == [["big:8b", "small:1b"], ["mid:3b", "small:1b"]] * 2  # exact_match, latency
    # the same comparison as with the baseline named by --config too
    code, again, _ = run(
        capsys, three, "compare", "three", "--config", "big:8b", "--config", "mid:3b",
        "--config", "small:1b", "--baseline", "small:1b", "--all",
    )  # fmt: skip
    assert code == 0 and again == out


def test_a_baseline_given_twice_by_two_names_of_one_config_is_taken(three, capsys):
    code, once, _ = run(capsys, three, "compare", "three", "--baseline", "small:1b")
    assert code == 0
    code, twice, err = run(
        capsys, three, "compare", "three", "--baseline", "small:1b", "--baseline", C.hash[:8]
    )
    assert (code, err, twice) == (0, "", once)
    code, _, err = run(capsys, three, "compare", "three", "--baseline", "small:1b",
                       "--baseline", "big:8b")  # fmt: skip
    assert code == 2
    assert err == (
        "error: --baseline given twice names 2 configs: 'small:1b', 'big:8b'; give one baseline\n"
    )


def test_a_baseline_config_refuses_is_refused_in_one_line(three, capsys):
    """`--baseline smal` (a label cut short) and `--baseline 1b` picked a config (exit 0)
    where `--config smal` was refused: refused alike, in one line with the other names."""
    listing = f"'big:8b' ({A.hash}); 'mid:3b' ({B.hash}); 'small:1b' ({C.hash})"
    for ref in ("smal", "1b"):
        code, _, config_err = run(capsys, three, "compare", "three", "--config", ref)
        assert code == 2 and config_err.startswith("error: experiment three has no config")
        code, out, err = run(capsys, three, "compare", "three", "--baseline", ref)
        assert (code, out) == (2, "")
        assert err == f"error: baseline '{ref}' is not among the compared configs: {listing}\n"
    code, _, err = run(capsys, three, "compare", "three", "--baseline", "smal", "--baseline", "1b")
    assert code == 2
    assert err == (
        "error: baselines 'smal', '1b' are not among the compared configs; "
        f"the configs of three: {listing}\n"
    )


def test_an_experiment_named_twice_is_compared_once(three, capsys):
    """`compare three three` is the comparison of three's configs, as `compare three`:
    not each config with itself, nor each twice."""
    code, once, _ = run(capsys, three, "compare", "three", "--all")
    assert code == 0
    code, twice, err = run(capsys, three, "compare", "three", "three", "--all")
    assert (code, err, twice) == (0, "", once)
    assert twice.splitlines()[0] == "Comparison: three"
    code, twice, _ = run(capsys, three, "compare", "three", "three", "--config", "big:8b",
                         "--config", "mid:3b")  # fmt: skip
    assert code == 0
    assert twice.splitlines()[0] == f"Comparison: three:{A.label}-vs-three:{B.label}"


def test_a_selector_version_that_does_not_exist_is_refused_with_those_there(three, capsys):
    code, _, err = run(capsys, three, "recommend", "qa", "--version", "4")
    assert code == 2
    assert err == (
        "error: selector version 4 does not exist; no version has been trained yet "
        "(`evalflow retrain` trains one)\n"
    )
    promoted = datetime(2026, 11, 20, tzinfo=UTC)
    with engine_for(None, three) as engine, Session(engine) as session:
        for i in (1, 2, 3, 5):
            session.add(SelectorVersion(id=i, promoted=i == 3, promoted_at=promoted))
        session.commit()
    code, _, err = run(capsys, three, "recommend", "qa", "--version", "4")
    assert code == 2
    assert err == (
        "error: selector version 4 does not exist; the versions there are: 1-3, 5 "
        "(default: 3, the promoted one)\n"
    )


def test_version_runs_are_written_as_spans():
    assert _spans([5, 1, 2, 3, 8, 9]) == "1-3, 5, 8, 9"
    assert _spans([7]) == "7"


def test_a_fault_of_the_selectors_own_code_is_not_reported_as_bad_input(three, capsys, monkeypatch):
    """recommend() refuses bad arguments with a ValueError (BadRequest); another
    ValueError from the selector's code is evalflow's failure, exit 1 (recheck R19: "error:
    could not convert string to float: ''", exit 2, read as the user's bad input)."""
    import selection.recommender

    def faulty(*_args: object, **_kwargs: object) -> None:
        raise ValueError("could not convert string to float: ''")

    monkeypatch.setattr(selection.recommender, "_answer", faulty)
    code, out, err = run(capsys, three, "recommend", "qa")
    assert code == 1 and out == ""
    assert err == (
        "error: evalflow failed: ValueError: could not convert string to float: '' "
        "(not a problem with your input; -v shows the traceback)\n"
    )
