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


def spec_for(tmp_path: Path, url: str, temperatures: tuple[float, ...] = (0.0,)) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "host-fails",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["llama3:latest"],
                "grid": {"temperature": list(temperatures)},
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
        spec = spec_for(tmp_path, standin.url, (0.0, 0.7))  # two configs, no output
        code = main(["--database", database_url, "run", str(spec), "--limit", "3", "-q"])
    out = capsys.readouterr().out
    assert code == 1
    assert "0 generated, 6 failed" in out
    assert "6 failed generations, by reason:" in out
    assert "every pair compared" not in out  # no outputs: nothing to compare (ncfast)
    assert "every output, in the browser:" in out  # the failures are there to read
    reasons = [line for line in out.splitlines() if line.startswith("  6 x ")]
    assert len(reasons) == 1, out
    assert "HTTP 500" in reasons[0] and "CUDA out of memory" in reasons[0], out
    assert "Backend" not in reasons[0]  # recheck G6: no class name, as the smoke level's
    # where to read them, in the database the run wrote (not the default one)
    db = f"--database {database_url}"
    assert f"every one: evalflow view host-fails {db} (or evalflow export host-fails " in out
    # As after Ctrl-C: the same command redoes only what failed.
    (resume,) = [line for line in out.splitlines() if "resume with: evalflow " in line]
    assert f"run {spec} --limit 3 -q (it does only the 6 failed)" in resume, resume

    assert main(["--database", database_url, "show", "host-fails"]) == 0  # it exists
    shown = capsys.readouterr().out
    assert "0 generations stored" in shown
    assert "6 failed generations, by reason:" in shown
    assert reasons[0] in shown
    assert f"every one: evalflow view host-fails {db} (or " in shown


def test_a_failed_smoke_level_is_the_hosts_failure_said_in_lines_that_fit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    # A newcomer's server killed mid-run: one 1,250-character line, class names
    # (SmokeFailed, BackendUnavailable), exit 2 (bad input's), and no resume command.
    monkeypatch.setenv("COLUMNS", "80")
    with running_standin(StandInConfig(slots=2)) as standin:
        standin.set_fault("bad_request", times=1000, message="the model file is corrupt")
        spec = spec_for(tmp_path, standin.url)
        argv = ["--database", database_url, "run", str(spec), "--level", "smoke", "-q"]
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err  # not the user's input
    assert "error: smoke level failed: 3 of 3 generations did not succeed:" in err
    assert "  3 on gpu (llama3:latest: 1 config): HTTP 400 " in err and "corrupt" in err
    assert "resume with:" in err and "(it does only the 3 failed)" in err
    assert "SmokeFailed" not in err and "BackendRejected" not in err
    words = [line for line in err.splitlines() if "Prefect flow run: " not in line]
    assert max(len(line) for line in words if str(tmp_path) not in line) <= 80, err

    assert main(["--database", database_url, "show", "host-fails"]) == 0
    (status,) = [line for line in capsys.readouterr().out.splitlines() if "Status:" in line]
    assert status.startswith("Status: failed: smoke level failed: 3 of 3"), status
