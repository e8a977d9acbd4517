"""An experiment's configs are those of the spec it last ran: registering it again with
fewer configs moves the others to ``dropped_configs`` (generations and scores kept, left
out of every frame of the experiment); registering one again moves it back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.dropped import dropped_configs, not_in_spec
from evaluation.storage.models import DroppedConfig, Generation
from evaluation.storage.repository import (
    completed_count,
    experiment_configs,
    generations_frame,
    register_experiment,
    scored_count,
    scores_frame,
)
from evaluation.view.detail import neighbours
from tests.support.databases import sqlite_or_postgres
from tests.support.results_db import add_experiment, make_config, make_suite

SUITE = make_suite(4)
CONFIGS = [make_config("m:1b", t) for t in (0.0, 0.5, 1.0)]


def _register(session, configs) -> int:
    return register_experiment(
        session,
        name="sweep",
        suite=SUITE,
        configs=configs,
        spec={"name": "sweep"},
        spec_path="",
        samples_per_case=1,
        metrics=["exact_match"],
        simulated=False,
    ).id


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    yield from sqlite_or_postgres(request.param, tmp_path / "r.db", "evalflow_dropped")


def test_configs_a_spec_no_longer_has_are_dropped_kept_and_back_when_it_has_them(url):
    engine = make_engine(url)
    scores = {c: {"exact_match": [1.0, 0.0, 1.0, 1.0]} for c in CONFIGS}
    with session_scope(engine) as session:
        experiment = add_experiment(session, "sweep", SUITE, scores).id
        _register(session, [CONFIGS[2], CONFIGS[0]])  # 0.5 taken out, the order changed

        assert list(experiment_configs(session, experiment)["hash"]) == [
            CONFIGS[2].hash,
            CONFIGS[0].hash,
        ]
        dropped = dropped_configs(session, experiment)
        assert (dropped.labels, dropped.generations) == (("t=0.5",), 4)
        assert set(generations_frame(session, experiment)["config_hash"]) == {
            CONFIGS[0].hash,
            CONFIGS[2].hash,
        }
        assert CONFIGS[1].hash not in set(scores_frame(session, experiment)["config"])
        stored = session.exec(select(func.count()).select_from(Generation)).one()[0]
        assert stored == 12  # nothing deleted
        assert (completed_count(session, experiment), scored_count(session, experiment)) == (8, 8)
        ids = dict(session.exec(select(Generation.id, Generation.config_hash)).all())
        kept = sorted(i for i, h in ids.items() if h != CONFIGS[1].hash)
        gap = next(k for k, i in enumerate(kept) if ids[i] != ids[kept[0]])  # 0.5's were here
        assert neighbours(session, experiment, kept[gap - 1]) == (kept[gap - 2], kept[gap])

        _register(session, CONFIGS)  # the spec has it again
        assert list(experiment_configs(session, experiment)["hash"]) == [c.hash for c in CONFIGS]
        assert not dropped_configs(session, experiment)
        assert session.exec(select(DroppedConfig)).all() == []
        assert len(generations_frame(session, experiment)) == 12
    engine.dispose()


def test_plan_and_run_count_a_dropped_configs_generations_alike(url):
    """`plan` counted a dropped config's generations stored ok, `run`'s warning every one
    stored, failed ones too: with one failed, 3 and 4 for the same state. Both count
    them the one way now, and say what they count: done (not generated again when a spec
    has the config back) and failed."""
    engine = make_engine(url)
    scores = {c: {"exact_match": [1.0, 0.0, 1.0, 1.0]} for c in CONFIGS}
    with session_scope(engine) as session:
        experiment = add_experiment(session, "sweep", SUITE, scores).id
        first = select(func.min(Generation.id)).where(Generation.config_hash == CONFIGS[1].hash)
        session.exec(
            update(Generation)
            .where(Generation.id == first.scalar_subquery())
            .values(status="failed")
        )
        kept = [CONFIGS[2], CONFIGS[0]]
        planned = not_in_spec(session, "sweep", {c.hash: c.label for c in kept})
        _register(session, kept)  # what `run` does as it starts
        dropped = dropped_configs(session, experiment)
    assert planned == dropped
    assert dropped.words() == "1 stored config (t=0.5; 3 generations done, 1 failed)"
    with session_scope(engine) as session:
        assert not not_in_spec(session, "sweep", {c.hash: c.label for c in CONFIGS})
        assert not not_in_spec(session, "never-run", {})
