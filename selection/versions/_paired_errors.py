"""Two versions' errors measured on the same rows: the (config, suite) aggregates the
current version never saw, or the new version's cross-validation folds."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from selection.model import LOG_TARGETS, SelectorModel
from selection.schema import SelectorVersion
from selection.training import (
    Hyperparameters,
    TrainingResult,
    fit_ensemble,
    grouped_folds,
    out_of_fold,
    target_arrays,
)

COMPARED = {"quality": "mae", "latency_p95": "relative_error"}
"""Targets a new version must not be worse on, and the error used for each."""


def compare_on_rows(
    result: TrainingResult,
    incumbent: SelectorModel,
    seen: pd.DataFrame,
    unseen: pd.DataFrame,
) -> dict[str, dict[str, float]]:
    """Both versions' errors on the rows ``unseen`` by the current one (``incumbent``),
    the new version refit on the ``seen`` ones so that only the training differs, with
    the one-sided 95% lower bound of the paired difference."""
    comparison = {}
    for name, metric in COMPARED.items():
        if name not in result.model.targets or name not in incumbent.targets:
            continue
        truth = target_arrays(unseen, name)[0]
        usable = np.isfinite(truth)
        if usable.sum() == 0:
            continue
        refit = fit_ensemble(seen, name, result.model.encoder, result.hyperparameters)
        candidate = refit.predict(result.model.encoder.transform(unseen))[0]
        current = incumbent.targets[name].predict(incumbent.encoder.transform(unseen))[0]
        truth_scale = np.exp(truth) if name in LOG_TARGETS else truth
        new = _errors(metric, candidate[usable], truth_scale[usable])
        old = _errors(metric, current[usable], truth_scale[usable])
        comparison[name] = {
            "candidate": float(new.mean()),
            "incumbent": float(old.mean()),
            "difference_low": _difference_low(new, old),
        }
    return comparison


def compare_on_folds(
    result: TrainingResult, incumbent: SelectorVersion, incumbent_model: SelectorModel
) -> tuple[dict[str, dict[str, float]], str]:
    """Both versions' cross-validated errors on the new version's aggregates, with the
    same folds: the new one's out-of-fold predictions, and the current one's way of
    training (its settings, fit only on the (config, suite) aggregates it learned from)
    refit on each fold's other rows. Each version's own recorded errors were measured
    on its own data: a version that learned from 3 configs all scoring 0.500 had a
    quality MAE of 0.00, which no version with more data could ever meet (a newcomer's
    v5, with 26 more cases of each config, was "worse in cross-validation: 2.92 > 0.00"
    forever), and toggling --include-simulated compared one pair of versions with other
    figures in each direction. Also the text saying how they were compared."""
    rows = result.rows
    keys = rows["config_hash"] + "|" + rows["suite"]
    learned = keys.isin(incumbent_model.trained_keys).to_numpy()
    settings = _settings(incumbent)
    alike = bool(learned.all()) and settings == result.hyperparameters
    groups = rows["suite" if result.grouping == "suite" else "config_hash"].to_numpy()
    strata = rows["task_type"].to_numpy()
    encoder = result.model.encoder
    x = encoder.transform(rows)
    comparison: dict[str, dict[str, float]] = {}
    left_out = 0
    for name in COMPARED:
        if name not in result.model.targets:
            continue
        y, weight, _ = target_arrays(rows, name)
        use = np.isfinite(y)
        folds = _folds(groups[use], strata[use], result.hyperparameters.n_splits)
        data = (x[use], y[use], weight[use], encoder)
        if f"oof_{name}" in rows:  # freshly trained: its own cross-validation, these folds
            new = rows[f"oof_{name}"].to_numpy(dtype=float)[use]
        else:
            new = out_of_fold(*data, result.hyperparameters, name, folds)[0]
        old = new if alike else out_of_fold(*data, settings, name, folds, learned[use])[0]
        both = np.isfinite(new) & np.isfinite(old)
        left_out = max(left_out, int((~both).sum()))
        if both.any():
            truth, w = y[use][both], weight[use][both]
            comparison[name] = {
                "candidate": _weighted_error(name, new[both], truth, w),
                "incumbent": _weighted_error(name, old[both], truth, w),
            }
    how = (
        f"version {incumbent.id} cross-validated on the same folds "
        f"(held-out {held_out(result.grouping)}), "
        "fit only on the aggregates it learned from"
    )
    if alike:
        how += (
            ": it learned from every one, with the same settings, so the two err alike and "
            "only the generations each learned from set them apart"
        )
    if left_out:
        how += (
            f"; {left_out} aggregate{'s' * (left_out != 1)} left out: in "
            f"{'its' if left_out == 1 else 'their'} fold version {incumbent.id} learned "
            "from none of the others"
        )
    elsewhere = len(incumbent_model.trained_keys - set(keys))
    if elsewhere:
        how += f"; the {elsewhere} it learned from that this data lacks do not count"
    return comparison, how


def held_out(grouping: str) -> str:
    """What cross-validation held out, as a reason says it ("suites", "configs")."""
    return {"suite": "suites", "config": "configs"}.get(grouping, grouping)


def _folds(
    groups: np.ndarray, strata: np.ndarray, n_splits: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds training cross-validated with (:func:`selection.training._fit_target`):
    grouped, or with a single group every row on both sides (in-sample)."""
    if len(np.unique(groups)) >= 2:
        return grouped_folds(groups, strata, n_splits)
    everything = np.arange(len(groups))
    return [(everything, everything)]


def _weighted_error(
    name: str, predicted: np.ndarray, truth: np.ndarray, weight: np.ndarray
) -> float:
    """A target's error as training records it: quality's MAE (predictions clipped to
    [0, 1]), a positive target's mean relative error, weighted as the rows are."""
    if name in LOG_TARGETS:
        truth, predicted = np.exp(truth), np.exp(predicted)
    else:
        predicted = np.clip(predicted, 0, 1)
    return float(np.average(_errors(COMPARED[name], predicted, truth), weights=weight))


def _settings(version: SelectorVersion) -> Hyperparameters:
    """The training settings ``version`` stored (settings added since: the defaults)."""
    known = {f.name for f in fields(Hyperparameters)}
    stored = version.hyperparameters or {}
    return Hyperparameters(**{k: v for k, v in stored.items() if k in known})


def _errors(metric: str, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    error = np.abs(predicted - truth)
    return error / truth if metric == "relative_error" else error


def _difference_low(new: np.ndarray, old: np.ndarray) -> float:
    """One-sided 95% lower bound of mean(new − old) (paired t); the plain difference
    when there are too few rows or no variation."""
    from scipy import stats

    difference = new - old
    if len(difference) < 2 or np.allclose(difference, difference[0]):
        return float(difference.mean())
    test = stats.ttest_rel(new, old, alternative="greater")
    return float(test.confidence_interval(0.95).low)
