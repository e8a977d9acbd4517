"""A host that lists its models and answers 503 (overloaded) to every generation request
(recheck's R6): the run was worked through, every case tried and failed, exit 1, and the
rerun redid them all. Now the host leaves the run as overloaded at the first generation
that ran out of tries on 503s: its work moves to another host serving the model, or, with
none, the run stops interrupted (nothing stored failed), exit 75, with a line saying the
host answered 503 and to run the same command again. An occasional 503 is still retried
(tests/flows/test_evaluate.py's sweep with two)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.flows.test_run_lifecycle import query
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/qa-short.jsonl"
CASES = sum(1 for line in SUITE.read_text().splitlines() if line.strip())
MODEL = "llama3.2:3b"


def write_spec(tmp_path: Path, hosts: list[dict]) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "overloaded",
                "suite": str(SUITE),
                "models": [MODEL],
                "grid": {"temperature": [0.0, 0.5], "num_predict": [8]},
                "hosts": hosts,
                "limits": {"max_attempts": 2},
            }
        )
    )
    return path


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["in-process", "workers"])
def test_a_host_answering_503_to_every_try_stops_the_run_for_later_nothing_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: list[str]
) -> None:
    db = tmp_path / "results.db"
    database = f"sqlite:///{db}"
    with running_standin(StandInConfig(models=(MODEL,), slots=2)) as server:
        server.set_fault("busy", times=10_000)
        spec = write_spec(tmp_path, [{"name": "gpu", "url": server.url, "slots": 2}])
        code = main(["--database", database, "run", str(spec), "-q", *workers])
        err = capsys.readouterr().err
        asked = server.stats.requests
        server.clear_faults()
        assert code == 75, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(
            "interrupted: gpu answered 503 (overloaded) to 2 tries: HTTP 503 for model "
            f"'{MODEL}': server busy"
        ), err
        command = " ".join(["evalflow", "--database", database, "run", str(spec), "-q", *workers])
        assert last.endswith(
            f"; the run stopped: 0 generations stored, {2 * CASES} left for later, nothing "
            f"lost; run the same command again when the server is free: {command}"
        ), err
        assert "Traceback" not in err
        assert asked == 2 * 2  # one generation per lane, two tries each: then it stopped
        assert query(db, "SELECT count(*) FROM generations") == [(0,)]  # none failed
        assert query(db, "SELECT status FROM experiments") == [("interrupted",)]

        assert main(["--database", database, "run", str(spec), "-q", *workers]) == 0  # resumed
    assert query(db, "SELECT status, count(*) FROM generations GROUP BY 1") == [("ok", 2 * CASES)]


def test_an_overloaded_hosts_work_moves_to_another_host_serving_the_model(
    tmp_path: Path, database_url: str
) -> None:
    config = StandInConfig(models=(MODEL,), slots=1)
    with running_standin(config) as overloaded, running_standin(config) as free:
        overloaded.set_fault("busy", times=10_000)
        hosts = [
            {"name": "busy", "url": overloaded.url, "slots": 1},
            {"name": "free", "url": free.url, "slots": 1},
        ]
        spec = write_spec(tmp_path, hosts)
        summary = asyncio.run(evaluate(str(spec), database=database_url))
    assert (summary["generated"], summary["failed"]) == (2 * CASES, 0)
    assert list(summary["hosts_down"]) == []
    assert overloaded.stats.requests <= 2  # its first generation's tries, then no more


def test_plan_probe_says_a_host_answering_503_is_overloaded(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines
    with running_standin(StandInConfig(models=(MODEL,), slots=1)) as server:
        server.set_fault("busy", times=10_000)
        spec = write_spec(tmp_path, [{"name": "gpu", "url": server.url, "slots": 1}])
        assert main(["--database", database_url, "plan", str(spec), "--probe"]) == 0
        asked = server.stats.requests
    out = capsys.readouterr().out
    assert "probe: gpu answered 503 (overloaded) to 1 try: HTTP 503 for model" in out, out
    assert asked == 1  # one try, then no more probing of it
