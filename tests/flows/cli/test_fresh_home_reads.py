"""On a fresh home the read-only verbs find no experiments and say so as they would on
an empty database, with their usual exit codes, and create no results database: SQLite
creates the file it opens (a ~1 MB write-ahead log beside it), and a refusal writes
nothing (docs/bad-input.md)."""

from __future__ import annotations

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
