"""`evalflow run --wait`: a run that finds its experiment taken waits for the holder."""

from __future__ import annotations

import threading
import time

import pytest

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.runs import ExperimentBusy, RunProcess, claim_experiment, end_run
from flows.run_control import claim


def test_wait_takes_the_experiment_once_its_holder_ends(database_url, capsys):
    engine = make_engine(database_url)
    holder = RunProcess(1, "", "another-host")  # elsewhere: believed alive until it ends
    with session_scope(engine) as session:
        claim_experiment(session, "sweep", holder, flow_run_id="f-1")
    with pytest.raises(ExperimentBusy):
        claim(engine, "sweep", wait=False)

    def end_later() -> None:
        time.sleep(1.5)
        with session_scope(engine) as session:
            end_run(session, "sweep", "completed", holder)

    ender = threading.Thread(target=end_later)
    ender.start()
    started = time.monotonic()
    assert claim(engine, "sweep", wait=True) == (RunProcess.current(), None)  # ended, not dead
    ender.join()
    assert time.monotonic() - started >= 1.5
    out = capsys.readouterr().out
    assert out.startswith("waiting: experiment 'sweep' is already running: process 1 on ")
    assert "flow run f-1" in out
