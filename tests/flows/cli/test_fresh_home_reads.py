"""On a fresh home the read-only verbs find no experiments and say so, with where they
looked and how one gets stored, with their usual exit codes, and create nothing: no
home folder (a newcomer's `show`, `experiments`, `plan` and `recommend` made an empty
one), no results database (SQLite creates the file it opens, a ~1 MB write-ahead log
beside it); a refusal writes nothing (docs/bad-input.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flows.cli import main
from tests.conftest import REPO

DEMO = str(REPO / "benchmarks/sweeps/demo-simulated.yaml")
NONE_THERE = "error: no experiment named 'nope': no results database at {db} yet"
VERBS = [
    (["experiments"], 0, "No experiments yet (no results database at {db} yet). Try:"),
    (["show", "nope"], 2, NONE_THERE),
    (["compare", "nope"], 2, NONE_THERE),
    (["export", "nope", "--out", "OUT"], 2, NONE_THERE),
    (["report", "nope"], 2, NONE_THERE),
    (["view", "nope", "--export", "OUT"], 2, NONE_THERE),
    (["status", "nope"], 2, NONE_THERE),
    (["judge-card", "nope"], 2, NONE_THERE),
    (["rate-next", "nope"], 2, NONE_THERE),
    (["rescore", "nope"], 2, NONE_THERE),
    (["baseline", "accept", "nope"], 2, NONE_THERE),
    (["status"], 0, "Nothing runs now"),
    (["series"], 0, "no series yet"),
    (["trends", "nope"], 2, "error: no results database at {db} yet: nothing to watch"),
    (["gate", "nope", "--baseline", "b"], 2, "error: no results database at {db} yet"),
    (["recommend", "qa"], 1, "qa: no selector has been trained yet"),
    (["plan", DEMO], 0, "generations 432 (12 configs"),
    (["plan", DEMO, "--level", "calibrated"], 2, "there is no results database yet"),
    (["power", DEMO, "--delta", "0.1"], 0, "Power for sweep demo-simulated"),
    (["bank", "qa-short", "--show"], 2, "there is no results database at {db} yet"),
    (["doctor"], None, "{db}: no database yet: no runs so far (the first run creates it"),
]


@pytest.mark.parametrize("made", [False, True], ids=["no-home-folder", "empty-home-folder"])
@pytest.mark.parametrize(("argv", "code", "said"), VERBS, ids=[" ".join(v[0]) for v in VERBS])
def test_read_verbs_on_a_fresh_home_create_nothing(
    tmp_path, monkeypatch, capsys, argv, code, said, made
):
    home = tmp_path / "home"
    if made:
        home.mkdir()
    monkeypatch.setenv("EVALFLOW_HOME", str(home))
    monkeypatch.delenv("EVALFLOW_DATABASE_URL", raising=False)
    out_dir = tmp_path / "out"
    argv = [a.replace("OUT", str(out_dir)) for a in argv]
    returned = main(argv)
    captured = capsys.readouterr()
    assert code is None or returned == code, captured
    text = " ".join((captured.out + captured.err).split())  # doctor wraps its lines
    assert said.format(db=home / "evalflow.db") in text
    assert list(home.iterdir()) == [] if made else not home.exists()  # no evalflow.db, -wal
    assert not out_dir.exists()


def test_a_run_on_a_fresh_home_makes_it(tmp_path, monkeypatch, capsys):
    """The first writer makes the home folder (a read never does)."""
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine

    home = tmp_path / "a" / "home"
    monkeypatch.setenv("EVALFLOW_HOME", str(home))
    monkeypatch.delenv("EVALFLOW_DATABASE_URL", raising=False)
    url = database_url()
    assert not home.exists()
    make_engine(url).dispose()
    assert (home / "evalflow.db").exists()


RETRAIN_PROBE = """
import sys
from flows.cli import main
code = main(sys.argv[1:])
print(code, "prefect" in sys.modules)
"""


def test_retrain_with_only_simulated_results_refuses_before_prefect(database_url, tmp_path):
    """It said so after 81 s (15 s of CPU): Prefect's start and a flow, to find nothing."""
    from evaluation.storage.db import make_engine, session_scope
    from tests.support.results_db import add_experiment, make_config, make_suite

    with session_scope(make_engine(database_url)) as session:
        scores = {make_config("sim:1b", 0.0): {"exact_match": [1.0, 0.0]}}
        add_experiment(session, "demo", make_suite(2), scores, simulated=True)
    done = subprocess.run(
        [sys.executable, "-c", RETRAIN_PROBE, "--database", database_url, "retrain"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.stdout.split() == ["1", "False"], done.stderr  # exit 1, Prefect not imported
    assert done.stderr == (
        "error: no stored generations to train the selector on; run more configs or suites "
        "first: e.g. `evalflow run SPEC` with more models or settings in its grid; simulated "
        "results are stored and left out: `evalflow retrain --include-simulated` learns from "
        "them too\n"
    )


def test_retrain_on_an_empty_home_blames_no_simulated_results(tmp_path, monkeypatch, capsys):
    """The newcomer's F5: with nothing stored at all `retrain` said "(simulated results
    are left out: add --include-simulated ...)"."""
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVALFLOW_DATABASE_URL", raising=False)
    assert main(["retrain"]) == 1
    assert capsys.readouterr().err == (
        "error: no stored generations to train the selector on; run more configs or suites "
        "first: e.g. `evalflow run SPEC` with more models or settings in its grid\n"
    )


def test_retrain_with_too_few_pairs_refuses_before_prefect(database_url, monkeypatch, capsys):
    """The newcomer's F7: with 1 real (config, suite) pair `retrain` waited 48 s for
    Prefect before "need successful generations for at least 3 (config, suite) pairs"."""
    from evaluation.storage.db import make_engine, session_scope
    from flows import run_control
    from tests.support.results_db import add_experiment, make_config, make_suite

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("Prefect started")

    monkeypatch.setattr(run_control, "prefect_api", started)
    with session_scope(make_engine(database_url)) as session:
        suite = make_suite(2)
        add_experiment(session, "real", suite, {make_config("a:1b"): {"exact_match": [1, 0]}})
        simulated = {make_config(f"sim:{n}b"): {"exact_match": [1, 0]} for n in (1, 2, 3)}
        add_experiment(session, "demo", suite, simulated, simulated=True)
    assert main(["--database", database_url, "retrain"]) == 1
    assert capsys.readouterr().err == (
        "error: need successful generations for at least 3 (config, suite) pairs; have 1; "
        "run more configs or suites first: e.g. `evalflow run SPEC` with more models or "
        "settings in its grid; simulated results are stored and left out: `evalflow retrain "
        "--include-simulated` learns from them too\n"
    )


@pytest.mark.parametrize("where", ["checkout", "docs", "elsewhere"])
def test_the_demo_suggested_on_a_fresh_home_runs_from_where_it_is_given(
    tmp_path, monkeypatch, capsys, where
):
    """The newcomer's F13: `Try: evalflow run benchmarks/sweeps/demo-simulated.yaml`
    named a path that resolves only in the checkout's root."""
    import shlex
    from pathlib import Path

    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVALFLOW_DATABASE_URL", raising=False)
    monkeypatch.chdir({"checkout": REPO, "docs": REPO / "docs", "elsewhere": tmp_path}[where])
    assert main(["experiments"]) == 0
    words = shlex.split(capsys.readouterr().out.split("Try: ", 1)[1])
    assert words[:2] == ["evalflow", "run"] and len(words) == 3
    assert Path(words[2]).resolve() == Path(DEMO).resolve()  # from the current folder
    assert Path(words[2]).is_absolute() == (where != "checkout")


@pytest.mark.parametrize(
    ("verb", "prefect_home"),
    [("health", None), ("doctor", "missing-parent/prefect")],
    ids=["health-default-prefect-home", "doctor-prefect-home-parent-missing"],
)
def test_health_and_doctor_leave_no_prefect_home_and_no_warning(tmp_path, verb, prefect_home):
    """The newcomer's F6: importing Prefect's settings (for PREFECT_API_URL) made an empty
    ~/.prefect, and where PREFECT_HOME's parent was missing printed Prefect's 2-line
    UserWarning under `healthy`. A process of its own: Prefect makes it on first import."""
    import os

    home = tmp_path / "fresh"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVALFLOW_"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    if prefect_home:
        env["PREFECT_HOME"] = str(home / prefect_home)
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", verb],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert list(home.iterdir()) == []  # no .prefect, no .evalflow
