"""A simulated host's url takes three options, ``?degrade=D``, ``?time_scale=S`` and
``?noise=N``
(docs/simulated-backend.md): another option, one given twice, or a value outside 0–1
(0–100), is refused in one line naming the field, exit 2, nothing written."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from evaluation.run._sweep import prepare_sweep
from flows.cli import main
from tasks import host_pool
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
        ("simulated://sim?seed=3", "takes only ?degrade=D (0 to 1), ?time_scale=S (0 to 100)"),
        ("simulated://sim?noise=1.5", "?noise= must be a whole number from 0 to 2147483647"),
        ("simulated://sim?time_scale=-1", "?time_scale= must be a number from 0 to 100"),
        # newcomers' W4: accepted, the last one taken, unsaid
        ("simulated://sim?degrade=0.3&degrade=0.1", "?degrade= is given more than once"),
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


def test_a_hosts_time_scale_is_what_a_run_given_none_sleeps(tmp_path, monkeypatch):
    """Recheck G7: only `run --time-scale` slowed the simulated backend, so a run the
    monitor's start button or a deployment started could not be watched going. A host's
    ``?time_scale=`` is what its calls sleep × their latency (the lane workers' backends
    too: None, each host's own); `run --time-scale N` (N > 0) overrides it."""

    async def checked(backends, models, configs):
        return {}

    monkeypatch.setattr(host_pool, "check_hosts", checked)
    sweep = prepare_sweep(spec_with(tmp_path, "simulated://sim?time_scale=2&degrade=0.1"))

    async def scales(asked: float) -> tuple:
        async with host_pool.open_host_pool(sweep, simulated_time_scale=asked) as pool:
            return pool.backends["sim"].time_scale, pool.simulated_time_scale

    assert asyncio.run(scales(0.0)) == (2.0, None)
    assert asyncio.run(scales(0.5)) == (0.5, 0.5)
    assert sweep.spec.hosts[0].degrade == 0.1
