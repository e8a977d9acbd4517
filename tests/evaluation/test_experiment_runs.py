"""One run per experiment at a time, the truth about how runs end, and sweeps that start
together on a fresh database (SQLite and PostgreSQL) without tripping over each other."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select

from evaluation.backends.base import ModelInfo
from evaluation.labels import legacy_label
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import ConfigRow, Experiment, ExperimentRun, ModelRow
from evaluation.storage.repository import (
    get_experiment,
    record_models,
    record_suite,
    register_experiment,
)
from evaluation.storage.runs import (
    CANCELLED_REASON,
    ExperimentBusy,
    RunProcess,
    claim_experiment,
    end_flow_run,
    end_run,
    experiment_status,
    record_level,
)
from tests.support.results_db import make_config, make_suite, register_unrun

SUITE = make_suite(30)
MODELS = [ModelInfo(f"m{i}:1b", digest=f"d{i}", family="llama") for i in range(30)]
ROUNDS = 20


def dead_process() -> RunProcess:
    """The identity of a process that has exited (its pid is free, or reused later)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    here = RunProcess.current()
    return RunProcess(child.pid, "", here.hostname)


def register(session, name: str, process: RunProcess) -> Experiment:
    claim_experiment(session, name, process)
    return register_unrun(session, name, spec_path="spec.yaml", suite=SUITE)


def race(workers: list[Callable[[], object]]) -> list[BaseException]:
    """Run the workers in threads released at the same instant; what they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def two_experiments_start_together(url: str) -> list[BaseException]:
    """What the flow's first stages write: register, then the models each host has."""

    def start(name: str, host: str) -> Callable[[], None]:
        def work() -> None:
            engine = make_engine(url)
            process = RunProcess.current()
            with session_scope(engine) as session:
                register(session, name, process)
            with session_scope(engine) as session:
                record_models(session, host, MODELS)
            engine.dispose()

        return work

    return race([start("sweep-a", "host-a"), start("sweep-b", "host-b")])


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_experiments_starting_together_on_a_fresh_sqlite_database(tmp_path, round_):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert two_experiments_start_together(url) == []
    with session_scope(make_engine(url)) as session:
        names = sorted(e.name for e in session.exec(select(Experiment)).scalars())
        models = list(session.exec(select(ModelRow)).scalars())
    assert names == ["sweep-a", "sweep-b"]
    assert len(models) == len(MODELS)
    assert all(sorted(m.hosts) == ["host-a", "host-b"] for m in models)


def test_two_experiments_starting_together_on_a_fresh_postgresql_database():
    from tests.integration.test_postgres_workers import _connect

    try:
        admin = _connect()
    except Exception as exc:  # psycopg2.OperationalError and friends
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    try:
        for _ in range(3):
            name = f"evalflow_runs_{uuid.uuid4().hex[:8]}"
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
            try:
                make_engine(url).dispose()  # the tables; their creation race is tested apart
                assert two_experiments_start_together(url) == []
                with session_scope(make_engine(url)) as session:
                    models = list(session.exec(select(ModelRow)).scalars())
                assert all(sorted(m.hosts) == ["host-a", "host-b"] for m in models)
            finally:
                with admin.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.mark.parametrize("round_", range(5))
def test_the_same_experiment_started_twice_at_once_runs_once(tmp_path, round_):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    make_engine(url).dispose()
    first, second = RunProcess.current(), RunProcess(1, "", "another-host")

    def start(process: RunProcess) -> Callable[[], None]:
        def work() -> None:
            with session_scope(make_engine(url)) as session:
                claim_experiment(session, "sweep", process)

        return work

    errors = race([start(first), start(second)])
    assert len(errors) == 1 and isinstance(errors[0], ExperimentBusy), errors
    with session_scope(make_engine(url)) as session:
        run = session.get(ExperimentRun, "sweep")
    assert f"process {run.pid} on {run.hostname}" in str(errors[0])


@pytest.fixture
def engine(database_url):
    return make_engine(database_url)


def test_a_live_run_refuses_a_second_and_names_it(engine):
    owner = RunProcess.current()
    with session_scope(engine) as session:
        claim_experiment(session, "sweep", owner, flow_run_id="f-123")
    other = RunProcess(owner.pid + 1, "", owner.hostname)
    with pytest.raises(ExperimentBusy) as busy, session_scope(engine) as session:
        claim_experiment(session, "sweep", other)
    assert str(busy.value).startswith(
        f"experiment 'sweep' is already running: process {owner.pid} on {owner.hostname}, "
        "flow run f-123, since "
    )
    with session_scope(engine) as session:  # the owner may claim again (CLI, then flow)
        claim_experiment(session, "sweep", owner, flow_run_id="f-456")
        assert session.get(ExperimentRun, "sweep").flow_run_id == "f-456"


def test_a_dead_run_is_reported_crashed_and_taken_over(engine):
    gone = dead_process()
    with session_scope(engine) as session:
        register(session, "sweep", gone)
    with session_scope(engine) as session:
        state = experiment_status(session, get_experiment(session, "sweep"))
    assert state.status == "crashed"
    assert f"process {gone.pid} on {gone.hostname}" in state.reason
    here = RunProcess.current()
    with session_scope(engine) as session:
        register(session, "sweep", here)
        state = experiment_status(session, get_experiment(session, "sweep"))
    assert (state.status, state.run.pid) == ("running", here.pid)


def test_an_ended_run_is_taken_over_and_only_its_owner_ends_it(engine):
    here = RunProcess.current()
    other = RunProcess(here.pid + 1, "", "another-host")
    with session_scope(engine) as session:
        register(session, "sweep", here)
    with session_scope(engine) as session:
        assert not end_run(session, "sweep", "failed", other, reason="not mine")
        assert end_run(session, "sweep", "failed", here, reason="RuntimeError: boom")
        assert not end_run(session, "sweep", "interrupted", here)  # ended already
    with session_scope(engine) as session:
        state = experiment_status(session, get_experiment(session, "sweep"))
        assert (state.status, state.reason) == ("failed", "RuntimeError: boom")
        register(session, "sweep", other)  # a failed run is resumed by the next one
    with session_scope(engine) as session:
        state = experiment_status(session, get_experiment(session, "sweep"))
        assert (state.status, state.reason, state.run.hostname) == ("running", None, "another-host")


def test_a_rerun_in_the_same_process_runs_again_and_can_end_cancelled(engine):
    """A process that reruns an experiment it ended (cancelled, then resumed, in one
    Python process) starts a new run: the rerun's own end is then recorded."""
    here = RunProcess.current()
    with session_scope(engine) as session:
        register(session, "sweep", here)
        claim_experiment(session, "sweep", here, flow_run_id="f-1")
    with session_scope(engine) as session:
        assert end_run(session, "sweep", "cancelled", here, reason=CANCELLED_REASON)
    with session_scope(engine) as session:
        assert get_experiment(session, "sweep").status == "cancelled"
        claim_experiment(session, "sweep", here, flow_run_id="f-2")
        register(session, "sweep", here)  # the rerun's flow sets it running again
    with session_scope(engine) as session:
        run = session.get(ExperimentRun, "sweep")
        assert (run.status, run.reason, run.flow_run_id) == ("running", None, "f-2")
        assert end_run(session, "sweep", "completed", here)
    with session_scope(engine) as session:
        assert get_experiment(session, "sweep").status == "completed"


def test_a_flow_run_ends_its_experiment_by_its_id(engine):
    here = RunProcess.current()
    with session_scope(engine) as session:
        register(session, "sweep", here)
        claim_experiment(session, "sweep", here, flow_run_id="f-1")
    with session_scope(engine) as session:
        assert not end_flow_run(session, "f-other", "failed", "x")
        assert end_flow_run(session, "f-1", "interrupted", "cancelled")
    with session_scope(engine) as session:
        assert get_experiment(session, "sweep").status == "interrupted"


def test_taking_over_a_dead_run_returns_its_flow_run_for_prefect_to_be_told(engine):
    gone = dead_process()
    with session_scope(engine) as session:
        claim_experiment(session, "sweep", gone, flow_run_id="f-dead")
    with session_scope(engine) as session:
        dead = claim_experiment(session, "sweep", RunProcess.current())
    assert dead is not None and dead.flow_run_id == "f-dead"
    assert f"process {gone.pid} on {gone.hostname}" in dead.reason and "is gone" in dead.reason
    # a run that ended is no dead run: nothing to mark
    with session_scope(engine) as session:
        end_run(session, "sweep", "completed", RunProcess.current())
    with session_scope(engine) as session:
        assert claim_experiment(session, "sweep", dead_process()) is None


def test_a_host_password_is_never_stored_with_the_experiment(engine):
    # a newcomer found OLLAMA_HOST=http://ana:hunter2@... stored in experiments.spec
    spec = {"hosts": [{"name": "local", "url": "http://ana:hunter2@127.0.0.1:11434"}]}
    with session_scope(engine) as session:
        record_suite(session, SUITE)
        register_experiment(
            session,
            name="secret-host",
            suite=SUITE,
            configs=[make_config()],
            spec=spec,
            spec_path="spec.yaml",
            samples_per_case=1,
            metrics=["exact_match"],
            simulated=False,
        )
    with session_scope(engine) as session:
        stored = session.exec(
            select(Experiment).where(Experiment.name == "secret-host")
        ).scalar_one()
        assert "hunter2" not in str(stored.spec)
        assert stored.spec["hosts"][0]["url"] == "http://ana:***@127.0.0.1:11434"


def test_a_config_stored_with_its_old_label_reads_as_now_once_registered_again(engine):
    """Labels leave out num_predict no more; a config stored before keeps its row (by
    hash), and registering it again (a new experiment, a resume) refreshes its label, so
    the configs of one experiment do not read in two forms."""
    config = Config(
        "m:1b", GenerationParams(temperature=0.0, num_predict=16), PromptTemplate("default")
    )
    with session_scope(engine) as session:
        record_suite(session, SUITE)
        session.add(
            ConfigRow(hash=config.hash, model=config.model, label=legacy_label(config.label))
        )
    with session_scope(engine) as session:
        register_experiment(
            session,
            name="labels",
            suite=SUITE,
            configs=[config],
            spec={},
            spec_path="spec.yaml",
            samples_per_case=1,
            metrics=["exact_match"],
            simulated=False,
        )
    with session_scope(engine) as session:
        stored = session.get(ConfigRow, config.hash)
        assert stored is not None and stored.label == "m:1b t=0 n=16" == config.label


def test_experiments_says_the_level_each_last_ran_at(tmp_path, capsys):
    """The level column was blank after a smoke run (only a calibrated run filled it)."""
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        for name, level, limit in (
            ("sm", "smoke", None),
            ("fu", "full", None),
            ("li", "subset", 5),
        ):
            register(session, name, RunProcess.current())
            record_level(session, name, level, limit)
            end_run(session, name, "completed", RunProcess.current())
        register(session, "old", RunProcess.current())  # claimed before levels were recorded
    assert main(["--database", url, "experiments"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    level_at = rows["sm"].index("smoke")
    assert rows["fu"][level_at:].startswith("full ")
    assert rows["li"][level_at:].startswith("subset, limit 5 ")
    assert rows["old"][level_at:].startswith(" " * 17)


def test_a_resumed_experiment_took_the_time_of_every_run_not_its_last_alone(engine):
    # A newcomer's 96 generations took three sessions (16:30-16:41); `status` and the
    # monitor said "took 4 min 51 s", the last one's, and a throughput over it.
    from datetime import UTC, datetime, timedelta

    from evaluation.monitor._summary import summarize

    here = RunProcess.current()
    start = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)

    def ran(minutes: float, *, at: datetime, status: str) -> None:
        with session_scope(engine) as session:
            run = session.get(ExperimentRun, "sweep")
            run.started_at, run.ended_at = at, at + timedelta(minutes=minutes)
            run.status = status
            session.add(run)

    with session_scope(engine) as session:
        experiment_id = register(session, "sweep", here).id
    ran(2, at=start, status="interrupted")
    for minutes, at in ((3, start + timedelta(minutes=4)), (5, start + timedelta(minutes=8))):
        with session_scope(engine) as session:
            claim_experiment(session, "sweep", here)  # a resume
        ran(minutes, at=at, status="completed" if minutes == 5 else "interrupted")
    with session_scope(engine) as session:
        (summary,) = summarize(session, [experiment_id])
    assert summary["duration_s"] == (2 + 3 + 5) * 60  # not the last run's 300 s
