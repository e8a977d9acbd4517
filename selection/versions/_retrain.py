"""A retraining: train on the stored data, store the version, promote it or not."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session

from evaluation.wording import counted
from selection._db import with_selector_tables
from selection.frame import validate_training_frame
from selection.steps import announce
from selection.training import Hyperparameters, train_selector
from selection.versions._decisions import RetrainOutcome
from selection.versions._model_cache import loaded_model
from selection.versions._promotion import decide_promotion
from selection.versions._same_data import nothing_new
from selection.versions._store import current_version, save_version


def train_and_maybe_promote(
    engine: Engine,
    frame: pd.DataFrame,
    *,
    include_outcomes: bool = True,
    hyperparameters: Hyperparameters | None = None,
    tolerance: float = 0.05,
) -> RetrainOutcome:
    """Train a selector on ``frame`` (plus recorded outcomes, unless not
    ``include_outcomes``), store it as a new version and promote it if it is not worse
    than the current one. Raises TrainingDataError when the data cannot train a
    selector. An outcome on a config ``frame`` has no run of is left out: a SIMULATED
    one where ``frame`` is real results only (the newcomer's F8, stop 71: a plain
    `retrain` learned from the outcome on the simulated demo's pick)."""
    from selection.outcomes import outcomes_frame, outcomes_words

    with Session(with_selector_tables(engine)) as session:
        outcomes = outcomes_frame(session)
    left_out = 0 if include_outcomes else len(outcomes)
    measured = outcomes["config_hash"].isin(frame["config_hash"])
    unmeasured = int((~measured).sum()) if include_outcomes else 0
    outcomes = outcomes[measured] if include_outcomes else outcomes.iloc[:0]
    parts = [frame, outcomes] if len(outcomes) else [frame]
    n_outcomes = len(outcomes)
    # each part on its own: an optional column only one part has (the outcomes' weight,
    # the results' case_group) gets its default on the other's rows, not NaN
    data = pd.concat([validate_training_frame(p) for p in parts], ignore_index=True)
    learned = f"{counted(len(data) - n_outcomes, 'generation')}{outcomes_words(n_outcomes)}"
    announce(f"checking {learned} against the stored versions")
    with Session(engine, expire_on_commit=False) as session:
        kept = nothing_new(session, data, hyperparameters, n_outcomes, tolerance)
    if kept is not None:
        kept.outcomes_left_out, kept.outcomes_unmeasured = left_out, unmeasured
        return kept
    result = train_selector(data, hyperparameters)
    announce("comparing it with the current version, storing it")
    with Session(engine, expire_on_commit=False) as session:
        incumbent = current_version(session)
        # an unloadable current version is "not comparable" (decide_promotion)
        incumbent_model = None if incumbent is None else loaded_model(session, incumbent)
        decision = decide_promotion(result, incumbent, incumbent_model, tolerance=tolerance)
        row = save_version(session, result, decision)
        session.commit()
        return RetrainOutcome(
            version_id=int(row.id or 0),
            decision=decision,
            result=result,
            sklearn_version=row.sklearn_version,
            n_outcomes=n_outcomes,
            outcomes_left_out=left_out,
            outcomes_unmeasured=unmeasured,
        )
