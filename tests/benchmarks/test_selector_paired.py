"""selector_paired.py's ``--summarize``: the closing table over the named units of several
JSON-line files, nothing trained or answered (``--resume`` on a file a process did not
write trains and answers every unit it lacks; issue 50, 2026-11-27 V5 section)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


def record(world: str, seed: int, after: float) -> dict:
    queries = [
        [task, tight, True, after >= 0.5, False]
        for task in ("qa", "code")
        for tight in ("tight", "loose")
    ]
    return {
        "world": world,
        "size": 1000,
        "seed": seed,
        "before_hit": 0.5,
        "after_hit": after,
        "before_over": 0.0,
        "after_over": 0.0,
        "hand_hit": 0.25,
        "hand_over": 0.0,
        "per_query": queries,
        "cpu_s": 1.0,
        "load": 2.0,
    }


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_summarize_reads_the_named_units_of_several_files(paired, tmp_path, monkeypatch, capsys):
    first = write(tmp_path / "a.jsonl", [record("cliff", 0, 0.6), record("cliff", 1, 0.0)])
    second = write(tmp_path / "b.jsonl", [record("cliff", 1, 0.7), record("cliff", 2, 0.0)])
    other = write(tmp_path / "c.jsonl", [record("flat", 0, 0.0)])
    argv = ["selector_paired.py", "--worlds", "cliff", "--seeds", "0", "1", "--summarize"]
    monkeypatch.setattr(sys, "argv", [*argv, str(first), str(second), str(other)])
    monkeypatch.setattr(paired, "run_unit", lambda *a, **k: pytest.fail("a unit was run"))

    paired.main()

    shown = capsys.readouterr().out
    assert "| cliff | 2 | 50.0 | +15.00 ± 5.00 | +10.0, +20.0 | 25.0 |" in shown
    assert "| flat |" not in shown
    assert "| **all** | 2 |" in shown


def test_out_is_required_without_summarize(paired, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["selector_paired.py", "--worlds", "cliff", "--seeds", "0"])
    with pytest.raises(SystemExit) as stopped:
        paired.main()
    assert stopped.value.code == 2
    assert "--out is required unless --summarize" in capsys.readouterr().err
