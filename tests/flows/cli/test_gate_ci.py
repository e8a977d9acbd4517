"""docs/trends.md's CI job, step by step through the command line: a baseline run of
main's spec, a candidate run of the pull request's, the gate with its JUnit and summary."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
import yaml

from flows.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("prefect_harness")

BASE = {
    "name": "ci",
    "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
    "models": ["sim-small:1b", "sim-large:8b"],
    "grid": {"temperature": [0.0], "num_predict": [128], "seed": [42]},
    "metrics": ["exact_match", "contains"],
    "hosts": [{"name": "sim", "url": "simulated://local", "slots": 4, "kind": "simulated"}],
}


def test_a_pull_request_that_edits_the_prompt_text_is_gated(tmp_path, capsys, database_url):
    # newcomer F14: every hash changed with the template text, and the gate exited 2
    # ("no config in common"), writing no JUnit and no summary
    base, cand = tmp_path / "base.yaml", tmp_path / "cand.yaml"
    base.write_text(yaml.safe_dump(BASE))
    edit = {"templates": {"default": "Reply with gibberish only.\n\n{input}"}}
    cand.write_text(yaml.safe_dump(BASE | edit))
    for spec, name in ((base, "pr-baseline"), (cand, "pr-candidate")):
        argv = ["run", str(spec), "--experiment", name, "--level", "full", "-q"]
        assert main(["--database", database_url, *argv]) == 0
    capsys.readouterr()
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    argv = ["gate", "pr-candidate", "--baseline", "pr-baseline", "--junit", str(junit)]
    assert main(["--database", database_url, *argv, "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "gate passed: pr-candidate [SIMULATED] vs pr-baseline [SIMULATED], 10 checks"
    )
    said = "compared with its config of the same label, whose template text differs"
    # one config, one name: the gate, its JUnit classnames, `show`, `status` and `trends`
    # name it as `show` does (newcomer N5: five spellings, "sim-small:1b t=0 n=128 seed=42")
    assert "note: compared by label: sim-small:1b, sim-large:8b:" in out
    assert said in out and said in summary.read_text()
    suite = ET.fromstring(junit.read_text())
    assert suite.get("tests") == "10" and suite.get("failures") == "0"
    assert {c.get("classname") for c in suite.iter("testcase")} == {"sim-small:1b", "sim-large:8b"}
    for argv in (["show", "pr-candidate"], ["status", "pr-candidate"], ["trends", "ci"]):
        assert main(["--database", database_url, *argv]) == 0
    shown = capsys.readouterr().out
    assert " sim-large:8b " in shown and "best on exact_match: sim-large:8b = " in shown
    assert "\nsim-large:8b  (since " in shown
    assert "every config: t=0 num_predict=128 seed=42" in shown
    assert "n=128" not in shown
    properties = [p.get("name") for p in suite.iter("property")]
    assert properties == ["SIMULATED", "compared by label", "passed, but"]
