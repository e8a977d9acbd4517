"""After `rescore --first X` a run of the same spec ranks by X wherever it ranks: the
race, the rounds the adaptive run scores, the calibrated level's bank and the power plan
read the run's primary from ``storage.repository.metrics_of_run``, the order the run
stores and `show` and `compare` rank by, not the spec's first metric. In process: a
SQLite file, the bundled 36-case suite, no Prefect server, nothing generated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from prefect.logging import disable_run_logger

from evaluation.adaptive import sweep_race
from evaluation.compare import _power_plan
from evaluation.itembank import sweep_metric
from evaluation.run import DispatchReport, prepare_sweep
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import (
    get_experiment,
    metrics_of_run,
    register_experiment,
    set_experiment_metrics,
)
from flows import adaptive
from tasks import race as race_tasks
from tests.conftest import REPO

SPEC_METRICS = ["contains"]
FIRST = "exact_match"  # what `rescore --first exact_match` made the run's primary


def _spec(tmp_path: Path) -> Path:
    """A race of two configs on the bundled qa-short suite, scored on ``SPEC_METRICS``."""
    spec = tmp_path / "spec.yaml"
    fields = {
        "name": "ranked",
        "suite": str(REPO / "benchmarks" / "suites" / "qa-short.jsonl"),
        "models": ["sim-small:1b"],
        "grid": {"temperature": [0.0, 0.7]},
        "metrics": SPEC_METRICS,
        "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
        "strategy": "race",
    }
    spec.write_text(yaml.safe_dump(fields))
    return spec


def _registered(session, sweep):
    """The experiment as a run of ``sweep`` registers it."""
    return register_experiment(
        session,
        name=sweep.spec.name,
        suite=sweep.suite,
        configs=sweep.configs,
        spec={"name": sweep.spec.name, "metrics": list(sweep.metrics)},
        spec_path="spec.yaml",
        samples_per_case=1,
        metrics=sweep.metrics,
        simulated=True,
    )


def test_the_run_after_rescore_first_ranks_by_that_metric_everywhere(
    tmp_path, database_url, monkeypatch
):
    sweep = prepare_sweep(_spec(tmp_path))
    engine = make_engine(database_url)
    with session_scope(engine) as session:  # a first run, then `rescore --first`
        experiment_id = _registered(session, sweep).id
        set_experiment_metrics(session, experiment_id, [FIRST, *SPEC_METRICS])
    with session_scope(engine) as session:
        run = metrics_of_run(session, "ranked", sweep.metrics)
        assert run == (FIRST, *SPEC_METRICS)
        assert metrics_of_run(session, "another", sweep.metrics) == tuple(SPEC_METRICS)
        # the item bank the calibrated level reads (plan, run, the nightly's check)
        assert sweep_metric(session, sweep) == FIRST
        assert sweep_metric(session, sweep, "another") == SPEC_METRICS[0]
        # the run stores the order this read gave (one source)
        stored = _registered(session, sweep)
        assert tuple(stored.metrics) == run
        assert tuple(get_experiment(session, "ranked").metrics) == run

    # the power plan lists the run's metrics, its primary first
    planned = {}
    monkeypatch.setattr(_power_plan, "plan_power", lambda **kw: planned.update(kw))
    _power_plan.plan_for_spec(str(sweep.spec.path), database_url=database_url, delta=0.05)
    assert planned["metrics"] == run

    # the race is judged on it, and each round scores it before judging
    cases = list(sweep.suite.cases)
    with disable_run_logger():
        race, plan = race_tasks.judge_race.fn(engine, experiment_id, "ranked", sweep, cases, FIRST)
    assert race.settings.metric == FIRST and plan is not None  # its first round: to run
    calls = {}

    def score(engine, experiment_id, suite, metrics, hosts):
        calls["scored"] = tuple(metrics)

    def judge_race(engine, experiment_id, experiment, sweep, cases, metric, published):
        calls["judged"] = metric
        return sweep_race(sweep, cases, metric), None

    monkeypatch.setattr(adaptive, "score", score)
    monkeypatch.setattr(adaptive, "judge_race", judge_race)
    rounds = adaptive.race_batches(engine, experiment_id, "ranked", sweep, cases, [], run)

    async def send(items):
        return DispatchReport(total=0)

    asyncio.run(rounds(send))
    assert calls == {"scored": run, "judged": FIRST}
