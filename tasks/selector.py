"""The selector retraining's tasks: load the training frame, train (and maybe promote),
publish the report."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.storage.db import session_scope
from evaluation.storage.training import has_simulated_rows, training_frame
from evaluation.wording import counted
from selection import quality_metric, render_report, train_and_maybe_promote
from selection.frame import NotEnoughTrainingData
from selection.steps import announce

ARTIFACT_KEY = "evalflow-selector-retrain"


@task(name="load-training-frame", cache_policy=NO_CACHE)
def load_training_frame(engine: Engine, include_simulated: bool) -> pd.DataFrame:
    announce("reading the stored results")
    with session_scope(engine) as session:
        frame = training_frame(session, quality_metric, include_simulated=include_simulated)
        left_out = frame.empty and not include_simulated and has_simulated_rows(session)
    if frame.empty:
        raise NotEnoughTrainingData.nothing_stored(left_out)
    get_run_logger().info(
        "training frame: %s from %s, %s",
        counted(len(frame), "generation"),
        counted(frame["experiment"].nunique(), "experiment"),
        counted(frame["config_hash"].nunique(), "config"),
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
