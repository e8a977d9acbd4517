"""When a host fails during a run, the run and `show` say why (issue 26 §2): the distinct
reasons of the failed generations with their counts, and where to read every one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.cli import main
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")


def spec_for(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "host-fails",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["llama3:latest"],
                "grid": {"temperature": [0.0]},
                "hosts": [{"name": "gpu", "url": url, "slots": 2}],
                "limits": {"max_attempts": 1},
            }
        )
    )
    return path


def test_a_host_failing_every_generation_is_reported_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    with running_standin(StandInConfig(slots=2)) as standin:
        standin.set_fault("server_error", times=1000, message="CUDA out of memory")
        spec = spec_for(tmp_path, standin.url)
        code = main(["--database", database_url, "run", str(spec), "--limit", "3", "-q"])
    out = capsys.readouterr().out
    assert code == 1
    assert "0 generated, 3 failed" in out
    assert "3 failed generations, by reason:" in out
    reasons = [line for line in out.splitlines() if line.startswith("  3 x ")]
    assert len(reasons) == 1, out
    assert "HTTP 500" in reasons[0] and "CUDA out of memory" in reasons[0], out
    # where to read them, in the database the run wrote (not the default one)
    db = f"--database {database_url}"
    assert f"every one: evalflow view host-fails {db} (or evalflow export host-fails " in out
    # As after Ctrl-C: the same command redoes only what failed.
    (resume,) = [line for line in out.splitlines() if "resume with: evalflow " in line]
    assert f"run {spec} --limit 3 -q (it does only the 3 failed)" in resume, resume

    assert main(["--database", database_url, "show", "host-fails"]) == 0  # it exists
    shown = capsys.readouterr().out
    assert "0 generations stored" in shown
    assert "3 failed generations, by reason:" in shown
    assert reasons[0] in shown
    assert f"every one: evalflow view host-fails {db} (or " in shown
