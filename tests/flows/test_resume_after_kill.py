"""Kill a sweep process with SIGKILL mid-way, run it again, and check that it resumes:
every generation stored exactly once, finished ones never requested again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM generations WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def run_cli(spec: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(spec)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_sigkill_mid_sweep_then_rerun_resumes(tmp_path):
    db = tmp_path / "results.db"
    env = os.environ | {
        "EVALFLOW_DATABASE_URL": f"sqlite:///{db}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    config = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=40.0)
    with running_standin(config) as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "kill-test",
                    "suite": str(SUITE),
                    "models": ["llama3.2:3b"],
                    "grid": {"temperature": [0.0, 0.3, 0.6], "num_predict": [16]},
                    "hosts": [{"name": "a", "url": server.url, "slots": 2}],
                }
            )
        )
        total = 3 * sum(1 for line in SUITE.read_text().splitlines() if line.strip())

        first = run_cli(spec, env)
        deadline = time.monotonic() + 120
        while stored(db) < total // 3 and time.monotonic() < deadline:
            assert first.poll() is None, first.stdout.read().decode()
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = stored(db)
        assert 0 < at_kill < total
        requests_before = server.stats.requests

        second = run_cli(spec, env)
        output, _ = second.communicate(timeout=300)
        text = output.decode()
        assert second.returncode == 0, text
        redone = server.stats.requests - requests_before

    assert stored(db) == total
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM generations").fetchone()[0]
        distinct = conn.execute(
            "SELECT count(DISTINCT config_hash || case_uid || sample_index) FROM generations"
        ).fetchone()[0]
    assert rows == distinct == total
    # only what was not stored at the kill was generated again
    assert redone == total - at_kill
    assert f"{at_kill} generations already stored" in text
    assert "Traceback" not in text
