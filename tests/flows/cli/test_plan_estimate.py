"""`evalflow plan` on real hosts: the duration estimated from what an earlier run
measured on the same host and model, what has no measurement named, `--probe` measuring
now through the same backend (at most the host's slots at once, nothing stored), and
the estimate following the level."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
SLOTS = 2
LATENCY_MS = 50.0


def write_spec(path: Path, url: str, models: list[str], temperatures: list[float]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "suite": str(SUITE),
                "models": models,
                "grid": {"temperature": temperatures, "num_predict": [16]},
                "hosts": [{"name": "gpu-a", "url": url, "slots": SLOTS}],
            }
        )
    )
    return path


def rows(database_url: str) -> int:
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM generations").fetchone()[0]


def test_plan_estimates_from_an_earlier_run_and_probes_what_is_new(
    tmp_path, database_url, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    config = StandInConfig(models=("llama3.2:3b", "qwen2.5:7b"), slots=SLOTS, latency_ms=LATENCY_MS)
    with running_standin(config) as server:
        earlier = write_spec(tmp_path / "earlier.yaml", server.url, ["llama3.2:3b"], [0.0])
        asyncio.run(evaluate(str(earlier), database=database_url))
        stored = rows(database_url)
        capsys.readouterr()

        assert main(["--database", database_url, "plan", str(earlier)]) == 0
        again = capsys.readouterr().out
        assert "resume    36 already stored in 'earlier', 0 to go" in again
        assert "duration  none: nothing left to generate (0 generations to go)" in again

        # Same model and config on the same host, plus a new temperature and a new model.
        spec = write_spec(
            tmp_path / "next.yaml", server.url, ["llama3.2:3b", "qwen2.5:7b"], [0.0, 0.5]
        )
        assert main(["--database", database_url, "plan", str(spec)]) == 0
        out = capsys.readouterr().out
        assert "duration  unknown: no measurements for qwen2.5:7b on gpu-a: use --probe" in out
        assert "(this config on gpu-a: 36 generations (earlier, " in out
        assert "(llama3.2:3b on gpu-a, other configs: 36 generations (earlier, " in out

        requests = server.stats.requests
        server.stats.max_in_flight = 0
        assert main(["--database", database_url, "plan", str(spec), "--probe"]) == 0
        out = capsys.readouterr().out
        probe_requests = server.stats.requests - requests
        peak = server.stats.max_in_flight

        assert main(["--database", database_url, "plan", str(spec), "--level", "smoke"]) == 0
        smoke = capsys.readouterr().out

    assert "probe     sending a few real generations to measure qwen2.5:7b on gpu-a " in out
    assert "probe: 2 generations of qwen2.5:7b on gpu-a just now" in out
    assert probe_requests == 3  # only the unmeasured model: its load, then its 2 lanes
    assert peak <= SLOTS
    assert rows(database_url) == stored  # the probe stored nothing
    duration = next(line for line in out.splitlines() if line.startswith("duration"))
    assert "for 144 generations" in duration
    # ~50 ms a generation, 144 on 2 slots: a few seconds, whatever the machine's load.
    assert "≈ " in duration and " s for " in duration

    assert "cases             3 of 36  (level smoke)" in smoke
    assert "generations       12  (4 configs × 3 cases × 1 sample; at level full: 144)" in smoke
    assert "llama3.2:3b  gpu-a  3 × " in smoke  # each config's share of the level
    assert "llama3.2:3b  gpu-a  36 × " not in smoke


def test_the_probe_waits_for_the_host_slots_a_running_sweep_holds(
    tmp_path, database_url, capsys, monkeypatch
):
    """Every slot of the host is held (as by a sweep running there): the probe sends
    nothing until they are given back, then measures."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    from prefect.client.orchestration import get_client

    from evaluation.spec import HostSpec
    from tasks.adapters.host_limits import size_limits
    from tasks.adapters.host_slots import HostSlots

    config = StandInConfig(models=("qwen2.5:7b",), slots=SLOTS, latency_ms=LATENCY_MS)
    with running_standin(config) as server:
        spec = write_spec(tmp_path / "probed.yaml", server.url, ["qwen2.5:7b"], [0.0])

        async def hold_then_probe() -> tuple[int, int, int]:
            async with get_client() as client:
                names = await size_limits(client, (HostSpec("gpu-a", server.url, SLOTS),))
                sweep = await HostSlots.open(client, names, timeout_s=60)
                held = [await sweep.take("gpu-a") for _ in range(SLOTS)]
                plan = asyncio.create_task(
                    asyncio.to_thread(
                        main, ["--database", database_url, "plan", str(spec), "--probe"]
                    )
                )
                await asyncio.sleep(3.0)
                while_held = server.stats.requests
                for lease in held:
                    await sweep.release(lease)
                await sweep.close()
                code = await plan
                limit = await client.read_global_concurrency_limit_by_name(names["gpu-a"])
                return while_held, code, limit.active_slots

        while_held, code, active_after = asyncio.run(hold_then_probe())
        requests = server.stats.requests

    assert code == 0
    assert while_held == 0  # nothing reached the host while its slots were taken
    assert requests == 1 + SLOTS  # then the load and one round of the lanes
    assert active_after == 0  # the probe gave its slots back
    assert "probe: 2 generations of qwen2.5:7b on gpu-a just now" in capsys.readouterr().out
