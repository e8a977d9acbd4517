"""A code sweep end to end through the CLI: simulated programs scored in the sandbox
with pass@k, failed tests kept with their reasons, then a rescore with a user's scorer
that raises on some outputs."""

from __future__ import annotations

import json
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
import yaml

from evaluation.metrics import _user
from flows.cli import main

pytestmark = [
    pytest.mark.usefixtures("prefect_harness"),
    pytest.mark.skipif(
        shutil.which("bwrap") is None,
        reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (.ci/run does)",
    ),
]

PREFIX = 'def f(x):\n    """Return x plus the case number."""\n'
SCORER = """
from evaluation.metrics import scorer

@scorer(score_type="binary", higher_is_better=False)
def gives_up(case, output):
    if case.id == "k1":
        raise RuntimeError("no opinion on k1")
    return "NotImplementedError" in output
"""


def _suite(folder: Path) -> Path:
    folder.mkdir()
    (folder / "mini-code.suite.yaml").write_text(
        "name: mini-code\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    lines = []
    for i in range(3):
        meta = {"entry_point": "f", "prefix": PREFIX, "tests": [f"assert f(1) == {i + 1}"]}
        lines.append(
            json.dumps(
                {
                    "id": f"k{i}",
                    "input": f"Write f.\n```python\n{PREFIX}```",
                    "references": [f"{PREFIX}    return x + {i}\n"],
                    "metadata": meta,
                }
            )
        )
    (folder / "mini-code.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "mini-code.jsonl"


def test_code_sweep_scores_pass_at_k_and_rescores_with_a_user_scorer(
    tmp_path: Path, capsys, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = {
        "name": "code-test",
        "suite": str(_suite(tmp_path / "suites")),
        "models": ["sim-small:1b", "sim-large:8b"],
        "grid": {"temperature": [0.2], "num_predict": [512]},
        "samples_per_case": 4,
        "metrics": ["pass@1", "pass@3", "tests_passed"],
        "hosts": [{"name": "sim", "url": "simulated://local", "slots": 2, "kind": "simulated"}],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["--database", database_url, "run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "24 generated, 0 failed" in out and "pass@3" in out

    db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    rows = db.execute(
        "SELECT g.config_hash, g.case_uid, g.output, s.value FROM scores s "
        "JOIN generations g ON g.id = s.generation_id WHERE s.metric = 'pass@1'"
    ).fetchall()
    assert len(rows) == 24
    for _, case_uid, output, value in rows:
        i = case_uid.rsplit("k", 1)[1]
        assert value == float(f"return x + {i}" in output)
    failed = db.execute("SELECT d.detail FROM score_details d WHERE d.metric = 'pass@1'").fetchall()
    assert len(failed) == sum(1 for *_, v in rows if v == 0.0) > 0
    assert all(json.loads(d)["failed"][0]["reason"] for (d,) in failed)
    pass3 = db.execute(
        "SELECT g.config_hash, g.case_uid, s.value FROM scores s "
        "JOIN generations g ON g.id = s.generation_id WHERE s.metric = 'pass@3'"
    ).fetchall()
    per_problem = {}
    for config, case_uid, value in pass3:
        per_problem.setdefault((config, case_uid), set()).add(value)
    assert all(len(values) == 1 for values in per_problem.values())

    (tmp_path / "userchecks_e2e.py").write_text(textwrap.dedent(SCORER))
    monkeypatch.syspath_prepend(str(tmp_path))
    _user._loaded.cache_clear()
    metric = "userchecks_e2e:gives_up"
    args = ["--database", database_url, "rescore", "code-test", "--metrics", f"pass@1,{metric}"]
    assert main(args) == 0
    assert metric in capsys.readouterr().out
    values = db.execute(
        "SELECT c.case_id, s.value FROM scores s JOIN generations g ON g.id = s.generation_id "
        "JOIN cases c ON c.uid = g.case_uid WHERE s.metric = ?",
        (metric,),
    ).fetchall()
    assert len(values) == 24
    assert all((v is None) == (case == "k1") for case, v in values)
    errors = db.execute("SELECT detail FROM score_details WHERE metric = ?", (metric,)).fetchall()
    assert errors == [("error: RuntimeError: no opinion on k1",)] * 8
    _user._loaded.cache_clear()
