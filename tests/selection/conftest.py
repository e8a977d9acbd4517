"""A small synthetic world with a known answer, and an in-memory database.

Two models (tiny:1b fast and weak, big:8b slow and strong), two templates, two
temperatures and two output limits, on two task types with two suites each. Quality and
latency follow ``true_quality`` / ``true_latency`` plus noise, so the best config is known:
without limits big:8b with the "careful" template at temperature 0 (num_predict does
not change quality); under a 1 s p95 limit the same settings on tiny:1b.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.pool import StaticPool
from sqlmodel import create_engine

from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.spec._params import NAMES
from evaluation.storage.db import EVALUATION_TABLES, create_tables
from selection.frame import validate_training_frame
from selection.schema import TABLES
from selection.training import Hyperparameters, train_selector

MODELS = {"tiny:1b": ("tiny", "1.0B"), "big:8b": ("big", "8.0B")}
TEMPLATES = {"plain": "{input}", "careful": "Think, then answer: {input}"}
SUITES = {"qa-a": "qa", "qa-b": "qa", "sum-a": "summarization", "sum-b": "summarization"}
FAST = Hyperparameters(
    ensemble_size=3, max_iter=40, learning_rate=0.3, min_samples_leaf=2, n_splits=2
)


def true_quality(model: str, template: str, temperature: float, task: str) -> float:
    base = {"tiny:1b": 0.45, "big:8b": 0.8}[model]
    bonus = {"qa": 0.1, "summarization": 0.06}[task] if template == "careful" else 0.0
    return base + bonus - (0.2 if temperature > 0.5 else 0.0)


def true_latency(model: str, num_predict: int) -> float:
    return {"tiny:1b": 0.3, "big:8b": 2.0}[model] * (0.5 + num_predict / 512)


def all_configs() -> list[Config]:
    return [
        Config(
            model,
            GenerationParams(temperature=t, num_predict=n),
            PromptTemplate(name, TEMPLATES[name]),
        )
        for model, name, t, n in itertools.product(MODELS, TEMPLATES, (0.0, 0.8), (64, 256))
    ]


def synthetic_frame(
    cases: int = 6, seed: int = 0, suites: dict[str, str] | None = None, energy: bool = True
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for config, (suite, task) in itertools.product(all_configs(), (suites or SUITES).items()):
        family, size = MODELS[config.model]
        p = config.params
        q = true_quality(config.model, config.template.name, p.temperature, task)
        mean_latency = true_latency(config.model, p.num_predict)
        for case in range(cases):
            latency = mean_latency * rng.lognormal(0, 0.1)
            rows.append(
                {
                    "experiment": f"exp-{suite}",
                    "config_hash": config.hash,
                    "model": config.model,
                    "family": family,
                    "parameter_size": size,
                    "quantization": "Q4_K_M",
                    "temperature": p.temperature,
                    "top_p": np.nan,
                    "top_k": np.nan,
                    "num_predict": p.num_predict,
                    "num_ctx": np.nan,
                    "seed": np.nan,
                    "template": config.template.name,
                    "template_text": config.template.text,
                    "task_type": task,
                    "suite": suite,
                    "case_id": f"c{case}",
                    "input_chars": 300 + 20 * case,
                    "quality": float(np.clip(q + rng.normal(0, 0.03), 0, 1)),
                    "latency_s": latency,
                    "ttft_s": latency / 5,
                    "tokens_per_s": 50.0,
                    "energy_j": 100 * latency if energy else np.nan,
                    "simulated": True,
                    "status": "ok",
                }
            )
    frame = pd.DataFrame(rows)
    for name in NAMES:  # the parameters the synthetic configs leave at their defaults
        if name not in frame:
            frame[name] = None
    return frame


def config_named(model: str, template: str, temperature: float, num_predict: int) -> Config:
    return Config(
        model,
        GenerationParams(temperature=temperature, num_predict=num_predict),
        PromptTemplate(template, TEMPLATES[template]),
    )


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return validate_training_frame(synthetic_frame())


@pytest.fixture(scope="session")
def trained(frame):
    return train_selector(frame, FAST)


@pytest.fixture
def engine():
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    create_tables(engine, (*EVALUATION_TABLES, *TABLES))
    yield engine
    engine.dispose()


@pytest.fixture
def read_only_trained(trained, tmp_path) -> tuple[str, Path]:
    """A database file holding ``trained`` as its promoted version, and a URL that opens
    it read-only (SQLite's read-only mode, which file permissions do not give root)."""
    from sqlmodel import Session

    from evaluation.storage.db import make_engine
    from selection.versions import PromotionDecision, save_version

    path = tmp_path / "shared.db"
    engine = make_engine(f"sqlite:///{path}", tables=(*EVALUATION_TABLES, *TABLES))
    with Session(engine) as session:
        save_version(session, trained, PromotionDecision(True, "test", basis="first version"))
        session.commit()
    engine.dispose()
    return f"sqlite:///file:{path}?mode=ro&uri=true", path
