"""Retrain the selector on every stored result and promote it if it is not worse."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.errors import EvalError
from evaluation.storage.db import open_database, session_scope
from evaluation.storage.training import training_frame
from flows.run_names import retrain_run_name
from selection import quality_metric, render_report, train_and_maybe_promote

ARTIFACT_KEY = "evalflow-selector-retrain"


@task(name="load-training-frame", cache_policy=NO_CACHE)
def load_training_frame(engine: Engine, include_simulated: bool) -> pd.DataFrame:
    with session_scope(engine) as session:
        frame = training_frame(session, quality_metric, include_simulated=include_simulated)
    if frame.empty:
        hint = (
            "" if include_simulated else " (simulated results are left out: set include_simulated)"
        )
        raise EvalError(f"no stored generations to train the selector on{hint}")
    get_run_logger().info(
        "training frame: %d generations from %d experiment(s), %d config(s)",
        len(frame),
        frame["experiment"].nunique(),
        frame["config_hash"].nunique(),
    )
    return frame


@task(name="train-selector", cache_policy=NO_CACHE)
def train(engine: Engine, frame: pd.DataFrame, include_outcomes: bool, tolerance: float):
    return train_and_maybe_promote(
        engine, frame, include_outcomes=include_outcomes, tolerance=tolerance
    )


@task(name="publish-retrain-report", cache_policy=NO_CACHE)
def publish_report(outcome) -> None:
    """Cross-validated errors, importances and the promotion decision (keyed artifact)."""
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=render_report(outcome),
        description=f"Selector version {outcome.version_id}",
    )


@flow(name="retrain-selector", flow_run_name=retrain_run_name)
def retrain_selector(
    database: str | None = None,
    include_simulated: bool = False,
    include_outcomes: bool = True,
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """Train a new selector version on the results database and promote it unless it is
    worse than the current one on data that one never saw.

    Args:
        database: a SQLAlchemy URL; defaults to $EVALFLOW_DATABASE_URL or ~/.evalflow.
        include_simulated: also learn from SIMULATED results (demo databases only).
        include_outcomes: also learn from outcomes applications recorded.
        tolerance: how much worse (relative) the new version may be and still be promoted.
    """
    engine = open_database(database)
    frame = load_training_frame(engine, include_simulated)
    outcome = train(engine, frame, include_outcomes, tolerance)
    publish_report(outcome)
    get_run_logger().info(outcome.decision.reason)
    return {
        "version_id": outcome.version_id,
        "promoted": outcome.decision.promoted,
        "reason": outcome.decision.reason,
        "generations": len(frame),
    }
