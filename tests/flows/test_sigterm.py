"""SIGTERM takes Ctrl-C's path: a real `evalflow run` sent `kill -TERM` with requests on
the wire waits for them (as the README promises for both) and stores them, so the rerun
never asks for them again. Prefect's flow engine installs a SIGTERM handler of its own
that cancelled every task: those requests were dropped (flows/run_control.py)."""

from __future__ import annotations

import signal

import pytest

from tests.flows.test_run_lifecycle import (
    EXIT_LIMIT_S,
    START_S,
    TEMPERATURES,
    environment,
    evalflow,
    interrupt,
    prefect_home,  # noqa: F401 - a fixture
    started,  # noqa: F401 - a fixture
    status,
    stored,
    wait_for,
    write_spec,
)
from tests.support.standin_ollama import StandInConfig, running_standin

SLOTS = 4
LATENCY_MS = 3000.0  # long enough that the signal lands with every slot's request on the wire

pytestmark = pytest.mark.timeout(1800)


def test_sigterm_stores_what_the_requests_in_flight_return(tmp_path, prefect_home, started):  # noqa: F811
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS)
    with running_standin(config) as s:
        spec = write_spec(tmp_path / "spec.yaml", "terminated", s.url)
        spec.write_text(spec.read_text().replace("slots: 2", f"slots: {SLOTS}"))
        run = evalflow(env, "run", str(spec), "--limit", "2")  # 6 generations
        started.append(run)
        wait_for(lambda: s.stats.in_flight == SLOTS, START_S, run)
        exit_s, output, left = interrupt(run, signal.SIGTERM)
        requests, at_exit = s.stats.requests, stored(db)

    assert run.returncode == 130 and left == [], output
    assert f"waiting up to 5 s for the {SLOTS} request(s) in flight" in output
    assert "Traceback" not in output, output
    assert at_exit == requests == SLOTS, output  # every request sent is stored: none redone
    assert at_exit < len(TEMPERATURES) * 2
    assert status(db, "terminated") == "interrupted"
    assert exit_s <= LATENCY_MS / 1000 + EXIT_LIMIT_S, output
