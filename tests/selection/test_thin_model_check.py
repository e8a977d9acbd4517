"""A thin model's quality prior checked on its own measured candidates
(selection/shrinkage.py, ``THIN_MODEL_CHECK``): where the trees predict a model with few
candidates far worse than the task type's check says, its rows' prior error is its own
check, and nothing else changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selection import shrinkage
from selection._notes import weight_note
from selection.shrinkage import checked_error, thin_model_check


def _residuals(
    counts: dict[str, int], misses: dict[str, float], measured: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Candidates of each model (``counts``), the first ``measured`` of each measured,
    their residuals (measurement − prior) drawn with sd ``misses[model]``; the others NaN
    (not measured). Standard error 0.05 each."""
    rng = np.random.default_rng(seed)
    models = pd.Series(np.concatenate([[name] * n for name, n in counts.items()]))
    residual = np.full(len(models), np.nan)
    for name in counts:
        rows = np.flatnonzero(models.to_numpy() == name)[:measured]
        residual[rows] = rng.normal(0.0, misses[name], len(rows))
    return residual, np.full(len(models), 0.05), models


def test_only_a_thin_models_rows_get_its_own_check_where_it_is_larger():
    counts = {"big-a": 180, "big-b": 180, "thin": 23}
    residual, se, models = _residuals(counts, {"big-a": 0.08, "big-b": 0.08, "thin": 0.25})
    task_sd, task_n = checked_error(residual, se)
    sd, n, of_model = thin_model_check(residual, se, models, ample=True)
    thin = models.to_numpy() == "thin"
    own_sd, own_n = checked_error(np.where(thin, residual, np.nan), se)
    assert own_sd > 1.5 * task_sd
    assert own_n == 10 and task_n == 30
    assert (sd[thin] == own_sd).all() and (n[thin] == own_n).all() and of_model[thin].all()
    assert (sd[~thin] == task_sd).all() and (n[~thin] == task_n).all()
    assert not of_model[~thin].any()


def test_a_thin_model_the_trees_predict_well_keeps_the_task_types_check():
    counts = {"big-a": 180, "big-b": 180, "thin": 23}
    residual, se, models = _residuals(counts, {"big-a": 0.08, "big-b": 0.08, "thin": 0.01})
    task_sd, task_n = checked_error(residual, se)
    sd, n, of_model = thin_model_check(residual, se, models, ample=True)
    assert (sd == task_sd).all() and (n == task_n).all() and not of_model.any()


def test_a_balanced_table_or_a_fit_that_is_not_ample_keeps_the_task_types_check():
    # The least-run model of a balanced grid is not thin, however badly it is predicted;
    # and where the fit is not ample no model's check is its own.
    for counts, ample in (({"a": 100, "b": 100, "c": 92}, True), ({"a": 180, "c": 23}, False)):
        misses = {name: 0.25 if name == "c" else 0.08 for name in counts}
        residual, se, models = _residuals(counts, misses)
        task_sd, task_n = checked_error(residual, se)
        sd, n, of_model = thin_model_check(residual, se, models, ample=ample)
        assert (sd == task_sd).all() and (n == task_n).all() and not of_model.any()


def test_the_weight_note_says_the_check_was_its_models():
    row = pd.Series(
        {
            "measured": True,
            "quality_model_sd": 0.05,
            "quality_check_sd": 0.25,
            "quality_check_n": 10,
            "quality_weight": 0.9,
            "quality_measurement_sd": 0.08,
        }
    )
    assert "against the 10 measured candidates, whose" in weight_note(row)
    row["quality_check_of_model"] = True
    note = weight_note(row)
    assert "against the 10 measured candidates of its model, whose" in note


def test_the_check_is_on():
    assert shrinkage.THIN_MODEL_CHECK is True
