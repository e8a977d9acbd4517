"""The nightly flow set to watch on the calibrated level: a night whose estimate moved
beyond noise runs the full suite for the config that moved, the same night and
experiment, recorded as such; without a usable
bank (none, other suite content, more cases than the suite) a night runs the full suite
and says why."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from prefect.logging import disable_run_logger
from sqlalchemy import func, select

from evaluation.itembank import calibrate_bank, sweep_cases
from evaluation.run._sweep import prepare_sweep
from evaluation.series import record_calibrated_night, record_run, suite_digest
from evaluation.series.schema import CalibratedNight
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment, Generation
from flows.nightly import nightly
from tasks.itembank import calibrated_tonight
from tests.support.itembank_db import build
from tests.support.results_db import MISSING, add_experiment

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _spec(tmp_path, name: str, url: str, first_input: str = "question 0") -> str:
    """A spec on the suite the bank was calibrated on (toy: 40 cases; another content
    with ``first_input``)."""
    suite = tmp_path / "toy.jsonl"
    suite.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"c{i:03d}",
                    "input": first_input if i == 0 else f"question {i}",
                    "references": [f"answer {i}"],
                }
            )
            + "\n"
            for i in range(40)
        )
    )
    (tmp_path / "toy.suite.yaml").write_text(
        "name: toy\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "cal",
                "suite": str(suite),
                "models": ["sim-large:8b"],
                "grid": {"temperature": [0.0]},
                "templates": {"concise": "Answer in a few words.\n\n{input}"},
                "hosts": [{"name": "sim", "url": url, "kind": "simulated"}],
            }
        )
    )
    return str(spec)


def _generated(url: str, experiment: str) -> int:
    engine = make_engine(url)
    with session_scope(engine) as session:
        found = session.exec(select(Experiment.id).where(Experiment.name == experiment)).scalar()
        count = session.exec(
            select(func.count()).select_from(Generation).where(Generation.experiment_id == found)
        ).scalar()
    engine.dispose()
    return count


def test_a_calibrated_nightly_escalates_only_what_moved(tmp_path, database_url):
    build(database_url, n_configs=8, n_cases=40, sub_cases=(), family="sim-")
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        calibrate_bank(session, "toy")
        # last night, stored as the nightly stores it (a flow run fewer): the calibrated
        # cases, all right
        sweep = prepare_sweep(_spec(tmp_path, "clean", "simulated://sim"))
        cases, _ = sweep_cases(session, sweep, 10)
        ids = {c.id for c in cases}
        right = [1.0 if c.id in ids else MISSING for c in sweep.suite.cases]
        night = add_experiment(
            session, "n1", sweep.suite, {sweep.configs[0]: {"exact_match": right}}
        )
        night.status = "completed"
        record_run(
            session,
            "n1",
            series="cal",
            explicit=False,
            suite="toy",
            suite_digest=suite_digest(sweep.suite),
            models=[],
        )
        record_calibrated_night(session, "n1", cases=sorted(ids), suite_cases=40)
    worse = _spec(tmp_path, "worse", "simulated://sim?degrade=0.6")
    state = asyncio.run(
        nightly(
            spec_path=worse,
            experiment="n2",
            database=database_url,
            level="calibrated",
            cases=10,
            return_state=True,
        )
    )
    assert _generated(database_url, "n2") == 40  # the 10 reused, the other 30 run
    with session_scope(engine) as session:
        night = session.get(CalibratedNight, "n2")
        assert len(night.case_ids) == 10 and night.suite_cases == 40
        assert "exact_match of sim-large:8b" in night.escalated
    second = state.result()
    assert second["level"] == "calibrated" and second["escalated"] == night.escalated
    assert second["generated"] == 40  # 10 calibrated, then 30 more for the config that moved

    engine.dispose()


def test_a_night_without_a_usable_bank_runs_the_full_suite_and_says_why(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=40, sub_cases=(), family="sim-")
    engine = make_engine(url)
    stale = prepare_sweep(_spec(tmp_path, "stale", "simulated://sim", first_input="new 0"))
    with disable_run_logger():
        assert (
            "--nightly-level calibrated needs an item bank for suite 'toy'"
            in calibrated_tonight.fn(engine, stale, None)
        )
        with session_scope(engine) as session:
            calibrate_bank(session, "toy")
        assert "differs from what item bank v1 was calibrated on" in calibrated_tonight.fn(
            engine, stale, None
        )
        fits = prepare_sweep(_spec(tmp_path, "fits", "simulated://sim"))
        assert calibrated_tonight.fn(engine, fits, None) == ""
        assert "--nightly-cases 41 is more than the suite's 40" in calibrated_tonight.fn(
            engine, fits, 41
        )
    engine.dispose()
