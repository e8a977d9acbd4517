"""The real-model rig: one llama.cpp server (llama-cpp-python's) for the whole session,
serving SmolLM2-135M-Instruct, Gemma-3-270M and all-MiniLM-L6-v2 from the dev extra's
packages (tests/support/real_models.py), each kept loaded once asked for. Skipped, saying
so, only where llama-cpp-python is not installed; a missing model package is an error,
not a skip."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.support.real_models import CHAT_MODELS, RealServer, serving

SUITES = REPO / "benchmarks" / "suites"


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    with serving(tmp_path_factory.mktemp("llama-real"), keep_loaded=True) as server:
        yield server


def write_spec(folder: Path, server: RealServer, suite: Path | str, **fields: Any) -> Path:
    """A sweep of both real models (temperature 0, 24 tokens) on ``suite``; ``fields``
    replace the spec's (``grid`` is merged)."""
    spec: dict[str, Any] = {
        "name": fields.pop("name", "real"),
        "suite": str(suite),
        "models": list(CHAT_MODELS),
        "grid": {"temperature": [0.0], "num_predict": [24]} | fields.pop("grid", {}),
        "hosts": [server.host()],
    }
    spec.update(fields)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_sweep(spec: Path, database_url: str, *, limit: int | None = None) -> dict[str, Any]:
    """The real ``evaluate`` flow, the one `evalflow run` starts."""
    from flows.evaluate import evaluate

    return asyncio.run(evaluate(spec_path=str(spec), database=database_url, limit=limit))


def stored(database_url: str, experiment: str):
    """(generations with their config's model, scores in long form) of ``experiment``."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.repository import (
        experiment_configs,
        generations_frame,
        get_experiment,
        scores_frame,
    )

    with session_scope(make_engine(database_url)) as session:
        experiment_id = int(get_experiment(session, experiment).id)
        configs = experiment_configs(session, experiment_id)
        generations = generations_frame(session, experiment_id)
        scores = scores_frame(session, experiment_id)
    model = dict(zip(configs["hash"], configs["model"], strict=True))
    generations["model"] = generations["config_hash"].map(model)
    scores["model"] = scores["config"].map(model)
    return generations, scores
