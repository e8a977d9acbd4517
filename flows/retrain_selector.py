"""Retrain the selector on every stored result and promote it if it is not worse."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from evaluation.storage.db import open_database
from flows.deployed_console import deployed_errors_in_one_line
from flows.run_names import retrain_run_name
from tasks.selector import load_training_frame, publish_report, train


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
        include_outcomes: also learn from outcomes applications recorded
            (``selection.record_outcome``; `evalflow retrain --no-outcomes` leaves them out).
        tolerance: how much worse (relative) the new version may be and still be promoted.
    """
    deployed_errors_in_one_line()
    engine = open_database(database)
    frame = load_training_frame(engine, include_simulated)
    outcome = train(engine, frame, include_outcomes, tolerance)
    if outcome.result is not None:  # None: a stored version learned from this data
        publish_report(outcome)
    get_run_logger().info(outcome.decision.reason)
    return {
        "version_id": outcome.version_id,
        "promoted": outcome.decision.promoted,
        "reason": outcome.decision.reason,
        "generations": len(frame),
        "outcomes": outcome.n_outcomes,
        "outcomes_left_out": outcome.outcomes_left_out,
        "outcomes_unmeasured": outcome.outcomes_unmeasured,
        "stored": outcome.result is not None,
    }
