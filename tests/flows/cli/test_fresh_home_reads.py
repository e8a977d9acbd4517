"""On a fresh home the read-only verbs find no experiments and say so as they would on
an empty database, with their usual exit codes, and create no results database: SQLite
creates the file it opens (a ~1 MB write-ahead log beside it), and a refusal writes
nothing (docs/bad-input.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flows.cli import main

VERBS = [
    (["experiments"], 0, "No experiments yet"),
    (["show", "nope"], 2, "error: no experiment named 'nope'; known experiments: none yet"),
    (["compare", "nope"], 2, "error: no experiment named 'nope'; known experiments: none yet"),
    (["export", "nope", "--out", "OUT"], 2, "error: no experiment named 'nope'"),
    (["recommend", "qa"], 1, "qa: no selector has been trained yet"),
]


@pytest.mark.parametrize(("argv", "code", "said"), VERBS, ids=[v[0][0] for v in VERBS])
def test_read_verbs_on_a_fresh_home_create_no_database(
    tmp_path, monkeypatch, capsys, argv, code, said
):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("EVALFLOW_HOME", str(home))
    out_dir = tmp_path / "out"
    argv = [str(out_dir) if a == "OUT" else a for a in argv]
    assert main(argv) == code
    captured = capsys.readouterr()
    assert said in captured.out + captured.err
    assert list(home.iterdir()) == []  # no evalflow.db, -wal or -shm
    assert not out_dir.exists()


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
    assert done.stderr.startswith(
        "error: no stored generations to train the selector on (simulated results are left "
        "out: add --include-simulated"
    )
