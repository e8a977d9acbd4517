"""A results database for the monitor's tests: a series of three finished nightly runs
(the last with a failed generation on a second host), and one run going on now, claimed
by this test process (so it is alive), with its live row."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.engine import Engine

from evaluation.backends.base import ModelInfo
from evaluation.monitor import LiveRun, set_stage
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.storage.db import session_scope
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    get_experiment,
    record_models,
    register_experiment,
    save_generations,
)
from evaluation.storage.runs import RunProcess, claim_experiment
from tests.support.review_db import build_review_db, make_configs, make_suite

SERIES = "nightly-qa"
NIGHTS = ("nightly-qa-1", "nightly-qa-2", "nightly-qa-3")
RUNNING = "live-qa"
FAILURE = "BackendUnavailable: host-b refused the connection"


@dataclass(frozen=True)
class MonitorDB:
    engine: Engine
    url: str


def build_monitor_db(url: str) -> MonitorDB:
    engine = None
    for night in NIGHTS:
        engine = build_review_db(url, name=night, n_cases=4).engine
    suite = make_suite(4)
    with session_scope(engine) as session:
        for night in NIGHTS:
            row = get_experiment(session, night)
            row.spec = {"name": SERIES}
            session.add(row)
        last = get_experiment(session, NIGHTS[-1])
        config = make_configs()[0]
        failed = GenerationRecord(
            WorkItem(config, suite.cases[0], suite.name, 1), "host-b", 3, error=FAILURE
        )
        save_generations(session, last.id, [failed])
        record_models(session, "host-a", [ModelInfo(name="toy:1b", digest="d1")])
        register_experiment(
            session,
            name=RUNNING,
            suite=suite,
            configs=make_configs(),
            spec={"name": RUNNING},
            spec_path="",
            samples_per_case=1,
            metrics=["exact_match"],
            simulated=False,
        )
    start_running(engine)
    return MonitorDB(engine, url)


def start_running(engine: Engine, flow_run_id: str | None = None) -> LiveRun:
    """Claim ``RUNNING`` for this process (alive: it is this one) and write its live
    row at 3 of 12 generations, one failed."""
    with session_scope(engine) as session:
        claim_experiment(session, RUNNING, RunProcess.current(), flow_run_id=flow_run_id)
        session.exec(update(Experiment).where(Experiment.name == RUNNING).values(status="running"))
    set_stage(engine, RUNNING, "load", started=True)
    live = LiveRun(engine, RUNNING, total=12, slots={"host-a": 2}, clock=lambda: 0.0)
    live.start()
    for _ in range(2):
        live.lane("host-a").holds()
    live.stored([None, None, "TimeoutError: no answer in 60 s"], per_s=1.5, eta_s=6.0)
    live.write()
    return live
