"""The evaluate flow end to end on the embedded Prefect server against a real HTTP
stand-in of Ollama: preflight, generation with faults, scoring, storage, artifacts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterTags,
    TaskRunFilter,
)
from prefect.client.schemas.sorting import ArtifactSort
from sqlmodel import Session, select

from evaluation.errors import ModelNotFound
from evaluation.run._work import WorkItem
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Aggregate, Generation, Score, ViewPage
from evaluation.storage.text_search import FTS_TABLE, UPTO_TABLE
from evaluation.view import stored as view_stored
from flows.evaluate import evaluate
from tasks import host_pool
from tests.conftest import REPO
from tests.support.results_db import MISSING, add_experiment, make_config, make_suite
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

QA_SUITE = REPO / "benchmarks/suites/qa-short.jsonl"


def write_spec(tmp_path: Path, url: str, **overrides) -> Path:
    spec = {
        "name": "flow-test",
        "suite": str(QA_SUITE),
        "models": ["llama3.2:3b"],
        "grid": {"temperature": [0.0, 0.5], "num_predict": [32]},
        "hosts": [{"name": "gpu-a", "url": url, "slots": 2, "kind": "ollama"}],
        "limits": {"max_attempts": 5},
    } | overrides
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def answer_from_references(model, messages):
    """The stand-in answers with the first word of the passage's question: text we can
    score deterministically."""
    return "Paris"


def test_sweep_generates_scores_stores_and_publishes(tmp_path, database_url):
    config = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=2.0)
    with running_standin(config) as server:
        server.set_fault("busy", times=2)
        server.set_fault("drop", times=1)
        spec = write_spec(tmp_path, server.url)
        summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        stats = server.stats

    n_cases = sum(1 for line in QA_SUITE.read_text().splitlines() if line.strip())
    assert summary["generated"] == 2 * n_cases
    assert summary["failed"] == 0
    assert stats.max_in_flight <= 2
    # num_predict is always sent
    assert stats.last_request["options"]["num_predict"] == 32
    engine = make_engine(database_url)
    with Session(engine) as session:
        gens = session.exec(select(Generation)).all()
        assert len(gens) == 2 * n_cases
        assert all(g.status == "ok" and g.eval_count > 0 and g.latency_s > 0 for g in gens)
        assert all(g.ttft_s is not None and g.ttft_s <= g.latency_s for g in gens)
        assert not any(g.simulated for g in gens)
        # the faults were retried: some generations needed more than one attempt
        assert sum(g.attempts for g in gens) >= len(gens) + 3
        metrics = {s.metric for s in session.exec(select(Score)).all()}
        assert {"exact_match", "contains", "output_length"} <= metrics
        facts = {a.metric for a in session.exec(select(Aggregate)).all()}
        assert {"latency_p50_s", "latency_p95_s", "exact_match"} <= facts
    if engine.dialect.name == "sqlite":  # the phase's end indexed its outputs for search, once
        with engine.connect() as connection:
            hits = connection.exec_driver_sql(
                f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH '\"paris\"'"
            ).scalar_one()
            upto = connection.exec_driver_sql(f"SELECT upto FROM {UPTO_TABLE}").scalar_one()
        assert hits == sum("paris" in g.output.lower() for g in gens) > 0
        assert upto == max(g.id for g in gens)


def test_a_slower_host_gets_work_in_proportion_to_its_pace(tmp_path, database_url):
    """gpu-a (2 slots, 40 ms) is 12x faster than gpu-b (2 slots, 480 ms): balanced work
    gives gpu-b about 1/13 of the 144 generations (11). Fixed chunks of 144/8 gave it
    one per lane, 36 generations (8.6 s), while gpu-a was done after 2 s.

    Nothing here holds either host back: a host held before its first answer looks stuck
    to the dispatcher, whose other host then rightly takes half its chunk (once seen: 38
    of 144). Under load one host's lanes may start seconds after the other's, and gpu-b
    may then find the sweep done (0 of 144): a share below its balanced one, which the
    bound allows. That both hosts take part in proportion when their lanes start together
    is tests/evaluation/test_dispatch.py's, without Prefect."""
    fast = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=40.0)
    slow = StandInConfig(models=("llama3.2:3b",), slots=2, latency_ms=480.0)
    with running_standin(fast) as a, running_standin(slow) as b:
        hosts = [
            {"name": "gpu-a", "url": a.url, "slots": 2},
            {"name": "gpu-b", "url": b.url, "slots": 2},
        ]
        grid = {"temperature": [0.0, 0.3, 0.6, 0.9], "num_predict": [8]}
        spec = write_spec(tmp_path, a.url, hosts=hosts, grid=grid)
        summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        peaks = (a.stats.max_in_flight, b.stats.max_in_flight)

    with Session(make_engine(database_url)) as session:
        rows = [(g.host, g.latency_s) for g in session.exec(select(Generation)).all()]
    assert summary["generated"] == len(rows) == 144
    # Not split in fixed chunks: those gave gpu-b one per lane, 36 of 144. Quiet, it gets
    # about its share of the combined rate (11); how near it comes depends on when each
    # host's lanes start and on the client's own delays in the fast host's request times
    # (at load 10-12: 29, while twice the measured share plus 4 was 28.5), so the
    # proportion itself is tests/evaluation/test_dispatch.py's, on a clock it controls.
    given = sum(host == "gpu-b" for host, _ in rows)
    assert given < 36, given
    assert peaks[0] <= 2 and peaks[1] <= 2


def test_unknown_model_fails_before_any_generation(tmp_path, database_url):
    with running_standin(StandInConfig(models=("qwen2.5:7b",), latency_ms=1.0)) as server:
        spec = write_spec(tmp_path, server.url)
        with pytest.raises(ModelNotFound) as info:
            asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        assert server.stats.requests_by_model == {}
    assert "qwen2.5:7b" in str(info.value)
    assert "llama3.2:3b" in str(info.value)


def test_client_error_fails_that_generation_and_the_sweep_goes_on(tmp_path, database_url):
    with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=1.0)) as server:
        server.set_fault("bad_request", times=1, message="invalid options")
        spec = write_spec(tmp_path, server.url, grid={"temperature": [0.0]})
        summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
    assert summary["failed"] == 1
    engine = make_engine(database_url)
    with Session(engine) as session:
        failed = session.exec(select(Generation).where(Generation.status == "failed")).all()
        failed = list(failed)
    assert len(failed) == 1
    assert "invalid options" in failed[0].error
    assert failed[0].attempts == 1


def test_rerun_resumes_without_redoing_work(tmp_path, database_url):
    with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=1.0)) as server:
        spec = write_spec(tmp_path, server.url, grid={"temperature": [0.0]})
        first = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        requests_after_first = server.stats.requests
        second = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        assert server.stats.requests == requests_after_first
    assert second["generated"] == 0
    assert second["skipped_already_done"] == first["generated"]


def test_a_resumed_run_starts_on_the_models_it_had_partly_done(tmp_path):
    """A resumed run ran the interrupted model's leftovers last (most items left first):
    one more model swap on a host that still had it loaded. The generate stage tells the
    dispatch which models of the work left were generated before."""
    suite = make_suite(3)
    partly, untouched = make_config("a:1b"), make_config("b:1b")
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with session_scope(engine) as session:
        scores = {partly: {"exact_match": [1.0, MISSING, MISSING]}}
        experiment = add_experiment(session, "sweep", suite, scores).id
    pending = [WorkItem(c, case, suite.name) for c in (partly, untouched) for case in suite.cases]
    assert host_pool.partly_done(engine, experiment, pending[1:]) == {"a:1b"}


async def artifact_data(key: str):
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=5,
        )
    assert found, f"no artifact {key}"
    return found[0].data


def test_simulated_sweep_is_labelled_simulated_and_its_report_says_completed(
    tmp_path, database_url, capsys
):
    """One run of the demo sweep (432 generations: seconds of CPU) for both checks."""
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    summary = asyncio.run(
        evaluate(spec_path=str(spec), experiment="sim-label-test", database=database_url)
    )
    assert summary["simulated"] is True
    # Prefect users find the run by its tags, and its page was printed as it started
    (run,) = asyncio.run(flow_runs_tagged("experiment:sim-label-test"))
    assert {"series:demo-simulated", "task:qa", "simulated"} <= set(run.tags)
    assert "Prefect flow run: http" in capsys.readouterr().err

    markdown = asyncio.run(artifact_data("evalflow-sim-label-test-leaderboard"))
    assert "SIMULATED" in markdown
    assert "`evalflow view sim-label-test`" in markdown  # where to read every output
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert all(g.simulated for g in session.exec(select(Generation)).all())
    json.dumps(summary)  # the flow's result is plain data
    # issue 26 §3: the report written at the end of the run, and its artifact, said
    # "status running" (they were made before the run was marked completed)
    report = asyncio.run(artifact_data("evalflow-sim-label-test-report"))
    html = Path(summary["report"]).read_text(encoding="utf-8")
    assert "status completed" in report and "status running" not in report
    assert "status completed" in html and "status running" not in html
    # the view's pages, stored before the report as the run would end, read back as is
    with Session(engine) as session:
        stored_key = session.get(ViewPage, (summary["experiment_id"], "summary")).fingerprint
        assert stored_key == view_stored._fingerprint(session, "sim-label-test")
        page = view_stored.summary_page(session, "sim-label-test")
    assert (page.status, page.running) == ("completed", False)


async def flow_runs_tagged(tag: str) -> list:
    async with get_client() as client:
        tagged = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
        return await client.read_flow_runs(flow_run_filter=tagged)


def test_a_limit_on_a_fresh_database_resumes_nothing(tmp_path, database_url, caplog):
    # issue 28 §8: the cases --limit left out were reported "already done (resumed)"
    with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=1.0)) as server:
        spec = write_spec(tmp_path, server.url)
        first = asyncio.run(evaluate(spec_path=str(spec), database=database_url, limit=3))
        caplog.clear()
        again = asyncio.run(evaluate(spec_path=str(spec), database=database_url, limit=5))
    # the resume line counted the whole sweep's work left ("1871 to go" under --limit 10)
    assert "6 generations already stored, 4 to go" in caplog.text
    n_cases = sum(1 for line in QA_SUITE.read_text().splitlines() if line.strip())
    # newcomer N7: "2 configs x 36 cases" where `run` said "5 cases of 36"; "model
    # switches per host: {'local': 1}" (a dict as Python prints it)
    assert f": 2 configs × 5 cases of {n_cases} × 1 sample on 1 host" in caplog.text
    (switches,) = [x for x in caplog.messages if "model switches: " in x]
    assert "{" not in switches and "(s)" not in caplog.text
    assert (first["generated"], first["skipped_already_done"]) == (2 * 3, 0)
    assert first["left_out_by_level"] == 2 * (n_cases - 3)
    assert (again["generated"], again["skipped_already_done"]) == (2 * 2, 2 * 3)
    assert again["left_out_by_level"] == 2 * (n_cases - 5)


def test_openai_compatible_host_runs_the_same_sweep(tmp_path, database_url):
    with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=1.0)) as server:
        spec = write_spec(
            tmp_path,
            server.url,
            grid={"temperature": [0.2], "num_predict": [24]},
            hosts=[{"name": "vllm", "url": server.url, "slots": 2, "kind": "openai"}],
        )
        summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        body = server.stats.last_request
    assert summary["failed"] == 0 and summary["generated"] > 0
    assert body["max_tokens"] == 24 and body["stream"] is True
    engine = make_engine(database_url)
    with Session(engine) as session:
        gens = session.exec(select(Generation)).all()
    assert all(g.status == "ok" and g.eval_count > 0 for g in gens)


def test_a_sweep_whose_generations_all_fail_still_finishes_and_reports(tmp_path, database_url):
    with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=1.0)) as server:
        server.set_fault("bad_request", times=1000, message="model cannot run on this GPU")
        spec = write_spec(tmp_path, server.url, grid={"temperature": [0.0]})
        summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
    assert summary["generated"] == 0 and summary["failed"] == 36
    engine = make_engine(database_url)
    with Session(engine) as session:
        facts = {a.metric: a.mean for a in session.exec(select(Aggregate)).all()}
    assert facts["generations_failed"] == 36 and facts["generations_ok"] == 0


def test_a_run_is_in_the_series_it_joined_from_its_start(database_url, monkeypatch):
    # newcomer-45: --series was stored after generation only, so a run interrupted (or
    # still running) fell back to its spec's series, and a resume without --series joined
    # that one. Generation stops both runs here before anything is generated.
    import flows.evaluate as module
    from evaluation.series import series_experiments

    async def interrupted(*args, **kwargs):
        raise RuntimeError("stopped while generating")

    monkeypatch.setattr(module, "generate_all", interrupted)
    spec = str(REPO / "benchmarks/sweeps/demo-simulated.yaml")
    for series in ("qa-canary", None):  # the run, then its resume without --series
        with pytest.raises(RuntimeError, match="stopped while generating"):
            asyncio.run(
                evaluate(spec_path=spec, experiment="joined", database=database_url, series=series)
            )
        with Session(make_engine(database_url)) as session:
            assert [e.name for e in series_experiments(session, "qa-canary")] == ["joined"]


def test_a_rerun_that_names_another_series_is_refused_before_it_registers(
    database_url, monkeypatch
):
    # newcomer F4: a rerun of a night with another --series moved it out of its series,
    # unsaid. The flow (a deployment's run as well as `run`'s) refuses it before its
    # register step: the experiment keeps its series, its stored spec and its status.
    import flows.evaluate as module
    from evaluation.series import SeriesKept, series_experiments
    from evaluation.storage.models import Experiment

    async def interrupted(*args, **kwargs):
        raise RuntimeError("stopped while generating")

    monkeypatch.setattr(module, "generate_all", interrupted)
    spec = str(REPO / "benchmarks/sweeps/demo-simulated.yaml")
    with pytest.raises(RuntimeError, match="stopped while generating"):
        asyncio.run(evaluate(spec_path=spec, experiment="n3", database=database_url, series="nd"))
    with Session(make_engine(database_url)) as session:
        session.exec(select(Experiment)).one().status = "completed"
        session.commit()
    with pytest.raises(SeriesKept, match="experiment 'n3' belongs to series 'nd'"):
        asyncio.run(evaluate(spec_path=spec, experiment="n3", database=database_url, series="x"))
    with Session(make_engine(database_url)) as session:
        assert [e.name for e in series_experiments(session, "nd")] == ["n3"]
        assert session.exec(select(Experiment)).one().status == "completed"


def test_a_run_of_another_spec_under_an_experiments_name_is_refused_before_it_registers(
    database_url, monkeypatch, tmp_path
):
    # newcomer F11: a deployment's run (as `run`'s) of another spec under an experiment's
    # name replaced its configs; refused before the claim and the register step: the
    # experiment keeps its configs and its status.
    import flows.evaluate as module
    from evaluation.series import SpecKept
    from evaluation.storage.models import Experiment, ExperimentConfig

    async def interrupted(*args, **kwargs):
        raise RuntimeError("stopped while generating")

    monkeypatch.setattr(module, "generate_all", interrupted)
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    with pytest.raises(RuntimeError, match="stopped while generating"):
        asyncio.run(evaluate(spec_path=str(spec), experiment="n4", database=database_url))
    with Session(make_engine(database_url)) as session:
        session.exec(select(Experiment)).one().status = "completed"
        session.commit()
        configs = len(session.exec(select(ExperimentConfig)).all())
    few = tmp_path / "few.yaml"
    text = spec.read_text().replace("name: demo-simulated", "name: nc-few")
    few.write_text(text.replace("../suites/", f"{REPO}/benchmarks/suites/"))
    with pytest.raises(SpecKept, match="experiment 'n4' was run from spec 'demo-simulated'"):
        asyncio.run(evaluate(spec_path=str(few), experiment="n4", database=database_url))
    with Session(make_engine(database_url)) as session:
        assert session.exec(select(Experiment)).one().status == "completed"
        assert len(session.exec(select(ExperimentConfig)).all()) == configs
