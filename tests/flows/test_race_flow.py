"""Levels and races through the real evaluate flow on the simulated backend: rounds as
generation batches, race state in the database, an artifact per round, a rerun after a
crash mid-race that replays the same rounds and redoes nothing, smoke failing fast."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactCollectionFilter as ArtifactFilter
from prefect.client.schemas.filters import ArtifactCollectionFilterKey as ArtifactFilterKey
from sqlmodel import Session, delete, select

from evaluation.adaptive import SmokeFailed
from evaluation.run import prepare_sweep
from evaluation.storage.db import make_engine
from evaluation.storage.models import Generation, RaceRoundRow, Score, ScoreDetail
from flows.cli import main
from flows.cli.results import leaderboard_text
from flows.evaluate import evaluate
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

N_CASES = 40


def write_sweep(tmp_path: Path, name: str, **overrides) -> Path:
    suite = tmp_path / "facts.jsonl"
    suite.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"q{i:02d}",
                    "input": f"Question {i}: what is the code word of item {i}?",
                    "references": [f"word{i}"],
                    "group": f"src{i % 6}",
                }
            )
            + "\n"
            for i in range(N_CASES)
        )
    )
    (tmp_path / "facts.suite.yaml").write_text(
        "name: facts\nversion: '1'\ntask_type: qa\ndefault_metrics: [contains]\n"
    )
    spec = {
        "name": name,
        "suite": str(suite),
        "models": ["sim-small:1b", "sim-xl:14b"],
        "grid": {"temperature": [0.0, 0.6], "num_predict": [64]},
        "metrics": ["contains"],
        "hosts": [{"name": "sim", "url": "simulated://local", "slots": 4, "kind": "simulated"}],
        "strategy": "race",
    } | overrides
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def rounds(url: str) -> list[tuple]:
    with Session(make_engine(url)) as session:
        rows = session.exec(select(RaceRoundRow).order_by(RaceRoundRow.round_index)).all()
        return [(r.n_cases, r.survivors, r.eliminated, r.spent, r.outcome, r.pick) for r in rows]


def generation_keys(url: str) -> list[tuple]:
    with Session(make_engine(url)) as session:
        return sorted(
            (g.config_hash, g.case_uid, g.sample_index, g.id)
            for g in session.exec(select(Generation)).all()
        )


async def artifacts(prefix: str) -> dict[str, str]:
    """The latest markdown of each artifact whose key matches ``prefix`` (SQL LIKE)."""
    async with get_client() as client:
        found = await client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix))
        )
    return {a.key: a.data for a in found}


@dataclass(frozen=True)
class FinishedRace:
    spec: Path
    database_url: str
    summary: dict
    rounds: list[tuple]  # as stored when the race ended


@pytest.fixture(scope="module")
def race(tmp_path_factory) -> FinishedRace:
    """The race of ``write_sweep``, run once to its end: the first test reads and then
    crashes it; the cancelled one compares its rounds with these (a race's rounds do not
    depend on the experiment's name)."""
    folder = tmp_path_factory.mktemp("race-flow")
    database_url = f"sqlite:///{folder / 'results.db'}"
    spec = write_sweep(folder, "race-flow")
    summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
    return FinishedRace(spec, database_url, summary, rounds(database_url))


def test_race_runs_in_rounds_and_a_rerun_after_a_crash_replays_it(race, capsys):
    spec, database_url, summary = race.spec, race.database_url, race.summary

    first = rounds(database_url)
    assert first, "no race rounds stored"
    n_cases, survivors, _, spent, outcome, pick = first[-1]
    assert outcome in ("one_left", "tie", "exhausted")
    assert pick in survivors
    dropped = [e["config"] for r in first for e in r[2]]
    assert dropped, "the clearly worse configs were never eliminated"
    assert all(e["p_adjusted"] <= 0.05 and e["reason"] == "worse" for r in first for e in r[2])
    assert summary["generated"] == spent < 4 * N_CASES  # less than the full grid
    stored = generation_keys(database_url)
    assert len(stored) == spent
    assert len(first) >= 2
    published = asyncio.run(artifacts("evalflow-race-flow-%"))
    assert {k for k in published if "-race-round-" in k} == {
        f"evalflow-race-flow-race-round-{i + 1}" for i in range(len(first))
    }
    round_one = published["evalflow-race-flow-race-round-1"]
    assert "(SIMULATED)" in round_one and "of the full grid's 160" in round_one
    board = published["evalflow-race-flow-leaderboard"]
    assert "## Race" in board and "stopped early in round" in board
    assert "Error control: on contains, P(the truly best config is eliminated) <= 0.05" in board
    report = published["evalflow-race-flow-report"]
    assert "## Race" in report and "Error control: on contains, P(the truly best" in report
    page = Path(summary["report"]).read_text()
    assert '<a href="#race">Race</a>' in page
    assert "Error control: on contains, P(the truly best" in page
    assert re.search(r"<td>#\d+ \S+", page[page.index('id="race"') :])  # rank and label
    assert main(["show", "race-flow", "--database", database_url]) == 0
    shown = capsys.readouterr().out
    assert "\nRace\nRace over: " in shown and "stopped early in round" in shown
    assert "Error control: on contains, P(the truly best config is eliminated) <= 0.05" in shown
    after_run = leaderboard_text(argparse.Namespace(database=database_url), "race-flow")
    assert shown.rstrip().endswith(after_run.rstrip())  # `run` prints what `show` does

    # A crash during the last round: part of its generations never got stored.
    last_cases = n_cases - (first[-2][0] if len(first) > 1 else 0)
    assert last_cases > 0
    engine = make_engine(database_url)
    with Session(engine) as session:
        gone = session.exec(select(Generation).order_by(Generation.id)).all()[-3:]
        lost = [g.id for g in gone]
        lost_keys = {(g.config_hash, g.case_uid, g.sample_index) for g in gone}
        for table in (ScoreDetail, Score):
            session.exec(delete(table).where(table.generation_id.in_(lost)))
        session.exec(delete(Generation).where(Generation.id.in_(lost)))
        session.exec(delete(RaceRoundRow))
        session.commit()

    again = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
    assert again["generated"] == 3  # only what was lost
    assert rounds(database_url) == first  # the same rounds, survivors and eliminations
    after = generation_keys(database_url)
    assert [k[:3] for k in after] == [k[:3] for k in stored]
    untouched = [k for k in stored if k[:3] not in lost_keys]
    assert set(untouched) <= set(after)  # same ids: nothing else was redone


def test_smoke_level_fails_fast_naming_what_broke(tmp_path, database_url):
    models = ("llama3.2:3b", "qwen2.5:7b")
    with running_standin(StandInConfig(models=models, slots=2, latency_ms=1.0)) as server:
        server.set_fault("bad_request", times=100, model="qwen2.5:7b", message="broken model")
        spec = write_sweep(
            tmp_path,
            "smoke-flow",
            strategy="full",
            models=list(models),
            hosts=[{"name": "gpu-a", "url": server.url, "slots": 2}],
        )
        with pytest.raises(SmokeFailed) as info:
            asyncio.run(evaluate(spec_path=str(spec), database=database_url, level="smoke"))
    message = str(info.value)
    assert message.startswith("smoke level failed: 6 of 12 generations did not succeed")
    assert "6 on gpu-a (qwen2.5:7b: 2 configs): " in message and "broken model" in message
    assert "llama3.2:3b" not in message and "\n" not in message
    assert "BackendRejected" not in message  # the stored error's class name
    with Session(make_engine(database_url)) as session:
        assert len(session.exec(select(Generation)).all()) == 12  # 3 cases x 4 configs


def test_limit_and_subset_levels_reuse_earlier_generations(tmp_path, database_url):
    spec = write_sweep(tmp_path, "levels-flow", strategy="full")
    first = asyncio.run(evaluate(spec_path=str(spec), database=database_url, limit=5))
    assert first["generated"] == 4 * 5
    subset = asyncio.run(evaluate(spec_path=str(spec), database=database_url, level="subset"))
    assert subset["generated"] + subset["skipped_already_done"] <= 4 * N_CASES
    total = len(generation_keys(database_url))
    assert total == 20 + subset["generated"]
    assert 4 * 12 <= total <= 4 * 17  # 20% of 60 cases, plus the 5 limited ones


def test_a_race_cancelled_mid_round_ends_cancelled_and_resumes_to_the_same_rounds(
    tmp_path, database_url, race, monkeypatch
):
    """Cancel from the API while a race generates: the flow run ends Cancelled, the
    experiment `cancelled`; the rerun replays the stored rounds and finishes with the
    same rounds, survivors and pick as a race that was never stopped (``race``).

    The host answers 25 requests and then holds every later one until it is
    cancelled, so the cancel always lands mid-race whatever the machine's load (the race
    used to run on, sleeping a fifth of its simulated latency, and could end before the
    test's cancel reached the API: a Completed run, failed once in a full suite)."""
    import threading

    from prefect.exceptions import CancelledRun
    from prefect.states import Cancelling

    from evaluation.backends.simulated import SimulatedBackend
    from evaluation.storage.models import ExperimentRun

    spec = write_sweep(tmp_path, "race-cancel")
    reference = race.rounds
    answered_first = 25  # then every request is held
    assert reference[-1][3] > answered_first

    answered, held = [0], threading.Event()
    generate = SimulatedBackend.generate

    async def answer_then_hold(self, request):
        if answered[0] >= answered_first:
            held.set()
            await asyncio.Event().wait()  # until the cancel cancels the request
        answered[0] += 1
        return await generate(self, request)

    monkeypatch.setattr(SimulatedBackend, "generate", answer_then_hold)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not held.wait(0.1):  # a request held: the race is in a round, mid-way
        assert thread.is_alive(), outcome
    with Session(make_engine(database_url)) as session:
        flow_run_id = session.get(ExperimentRun, "race-cancel").flow_run_id

    async def cancel() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(flow_run_id, Cancelling())

    asyncio.run(cancel())
    thread.join(120)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), CancelledRun), outcome
    at_cancel = len(generation_keys(database_url))
    with Session(make_engine(database_url)) as session:
        assert session.get(ExperimentRun, "race-cancel").status == "cancelled"
    assert at_cancel <= answered_first  # stopped before the end; what was answered is stored

    monkeypatch.setattr(SimulatedBackend, "generate", generate)
    again = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
    assert again["generated"] == reference[-1][3] - at_cancel
    assert rounds(database_url) == reference
    keys = generation_keys(database_url)
    assert len({k[:3] for k in keys}) == len(keys) == reference[-1][3]


def test_a_race_drops_configs_over_its_latency_limit_and_picks_within_it(tmp_path, database_url):
    # sim-xl:14b is the better model but answers in ~0.54 s; sim-small:1b in ~0.13 s.
    spec = write_sweep(tmp_path, "race-limit", max_latency_s=0.3)
    asyncio.run(evaluate(spec_path=str(spec), database=database_url))

    stored = rounds(database_url)
    first_round_drops = {e["config"]: e for e in stored[0][2]}
    models = {c.hash: c.model for c in prepare_sweep(spec).configs}
    xl = {h for h, m in models.items() if m == "sim-xl:14b"}
    assert set(first_round_drops) >= xl  # both xl configs, in round 1
    assert {first_round_drops[h]["reason"] for h in xl} == {"limit"}
    assert all(first_round_drops[h]["by"] == "latency_s p95 > 0.3" for h in xl)
    *_, outcome, pick = stored[-1]
    assert models[pick] == "sim-small:1b" and outcome in ("one_left", "tie", "exhausted")
    board = asyncio.run(artifacts("evalflow-race-limit-leaderboard"))
    assert "latency_s p95 > 0.3" in board["evalflow-race-limit-leaderboard"]
