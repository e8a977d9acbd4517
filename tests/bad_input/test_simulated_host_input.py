"""A simulated host's url takes one option, ``?degrade=D`` (docs/simulated-backend.md):
another option, or a value outside 0–1, is refused in one line naming the field, exit 2,
nothing written."""

from __future__ import annotations

import pytest
import yaml

from flows.cli import main
from tests.conftest import REPO


def spec_with(tmp_path, url: str):
    spec = {
        "name": "degraded",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": ["sim-small:1b"],
        "hosts": [{"name": "sim", "url": url, "kind": "simulated"}],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("simulated://sim?degrade=1.5", "?degrade= must be a number from 0 to 1, got '1.5'"),
        ("simulated://sim?degrade=lots", "?degrade= must be a number from 0 to 1, got 'lots'"),
        ("simulated://sim?seed=3", "takes only ?degrade=D (0 to 1), got ?seed="),
    ],
)
def test_a_bad_simulated_host_option_is_one_line(tmp_path, capsys, url, says):
    database = tmp_path / "results.db"
    code = main(["--database", f"sqlite:///{database}", "run", str(spec_with(tmp_path, url))])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "hosts[0].url" in lines[0] and says in lines[0], err
    assert "Traceback" not in err and not database.exists()
