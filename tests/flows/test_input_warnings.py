"""A suite's ForgeableTestWarning through the command line: one readable `warning:` line
(file:line, metadata.tests[i], why), said once although `run` reads the suite twice (the
plan's check, then the sweep), not Python's two-line warning with a source line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from flows.cli import main

pytestmark = [
    pytest.mark.usefixtures("prefect_harness"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"),
]

PREFIX = 'def f(x):\n    """Return x plus one."""\n'


def test_a_forgeable_test_is_one_warning_line_once_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    (tmp_path / "mc.suite.yaml").write_text(
        "name: mc\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    tests = ["assert f(1) == 2", "assert abs(f(1) - 2) < 1e-9"]
    case = {
        "id": "k0",
        "input": f"Write f.\n```python\n{PREFIX}```",
        "references": [f"{PREFIX}    return x + 1\n"],
        "metadata": {"entry_point": "f", "prefix": PREFIX, "tests": tests},
    }
    (tmp_path / "mc.jsonl").write_text(json.dumps(case) + "\n")
    spec = {
        "name": "warned",
        "suite": str(tmp_path / "mc.jsonl"),
        "models": ["sim-small:1b"],
        "grid": {"temperature": [0.2], "num_predict": [64]},
        "metrics": ["pass@1"],
        "hosts": [{"name": "sim", "url": "simulated://local", "slots": 1, "kind": "simulated"}],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))

    assert main(["--database", database_url, "run", str(tmp_path / "spec.yaml")]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "metadata.tests" in line]
    assert warned == [
        f"warning: {tmp_path / 'mc.jsonl'}:1: metadata.tests[1]: checked inside the program's"
        " process (only `assert f(...) == <literal>` and its `!=`, `is True/False/None`, `not`"
        " and `bool()` forms, and `try: ...; raise AssertionError / except E: pass`, are decided"
        " outside it; docs/sandbox.md): a program written to game this test can pass it"
    ]
    assert "ForgeableTestWarning" not in err and "_check_code_tests" not in err
