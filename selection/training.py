"""Training: aggregate the generations, cross-validate by suite, fit the final selector.

Cross-validation is grouped by suite: a suite's cases are never on both sides of a
split, so the errors say how well the selector predicts a suite it has not seen. Folds
are stratified by task type (``StratifiedGroupKFold``) so a held-out suite's task type is
usually still known through its other suites. With a single suite, configs are held out
instead and the result says so.

Rows are weighted by n / (n + N0), n the generations behind a (config, suite) aggregate:
its variance is roughly τ² + σ²/n (suite-to-suite spread plus sampling noise), so more
generations help only until the suite-level spread dominates.

Intervals: the out-of-fold residual r of a row mixes model error and the row's own
sampling noise (``<target>_noise``, see :mod:`selection.aggregate`). The model error's
variance is modelled as (c·(spread + floor))², spread the ensemble's, and c is the
method-of-moments estimate Σw(r² − noise) / Σw(spread + floor)² (at least a tenth of the
residual variance is left to the model). The interval therefore covers the config's
expected value on a new suite, not one noisy measurement of it; ``coverage`` checks the
variance model by how many held-out residuals fall within z·sqrt(model² + noise).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from evaluation.wording import counted
from selection._forest import Trees
from selection.aggregate import TARGETS, aggregate, case_scores, evidence
from selection.features import FeatureEncoder
from selection.frame import NotEnoughTrainingData, config_table
from selection.frame import fingerprint as frame_fingerprint
from selection.model import LOG_TARGETS, QUALITY, SelectorModel, TargetModel, single_threaded
from selection.outcomes import from_runs
from selection.prompt_fit import prompt_lengths
from selection.steps import announce

N0 = 10.0
MIN_ROWS = NotEnoughTrainingData.MIN_PAIRS
COVERAGE = 0.9
MIN_MODEL_SHARE = 0.1


@dataclass(frozen=True)
class Hyperparameters:
    """Settings of each ensemble member (``HistGradientBoostingRegressor``)."""

    ensemble_size: int = 5
    max_iter: int = 100
    learning_rate: float = 0.15
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 5
    l2_regularization: float = 1.0
    n_splits: int = 5
    seed: int = 0


@dataclass
class TrainingResult:
    """A fitted selector and how it did in grouped cross-validation.

    ``metrics[target]``: ``mae`` (quality on [0, 1], others in their unit),
    ``relative_error`` (positive targets), ``rmse`` / ``noise_rmse`` / ``model_rmse`` on
    the fitting scale (log for positive targets: roughly relative), ``coverage``,
    ``n_rows``, ``n_groups``. ``rows`` are the (config, suite) aggregates with the
    out-of-fold prediction of each target in ``oof_<target>`` (fitting scale).
    ``n_generations``: the stored generations learned from, recorded outcomes apart (as
    :func:`evaluation.storage.training.training_generations` counts them)."""

    model: SelectorModel
    metrics: dict[str, dict[str, Any]]
    importances: dict[str, dict[str, float]]
    rows: pd.DataFrame
    fingerprint: str
    n_generations: int
    n_rows: int
    grouping: str
    seconds: float
    hyperparameters: Hyperparameters
    notes: list[str] = field(default_factory=list)


def train_selector(
    frame: pd.DataFrame, hyperparameters: Hyperparameters | None = None
) -> TrainingResult:
    """Fit a selector on a validated per-generation frame
    (:func:`selection.frame.validate_training_frame`)."""
    started = time.perf_counter()
    hp = hyperparameters or Hyperparameters()
    rows = training_rows(frame)
    if len(rows) < MIN_ROWS:
        raise NotEnoughTrainingData.too_few(len(rows))
    notes: list[str] = []
    encoder = FeatureEncoder.fit(rows)
    x = encoder.transform(rows)
    if rows["suite"].nunique() >= 2:
        groups, grouping = rows["suite"].to_numpy(), "suite"
    else:
        groups, grouping = rows["config_hash"].to_numpy(), "config"
        notes.append("only one suite: cross-validation holds out configs, not suites")
    strata = rows["task_type"].to_numpy()
    targets: dict[str, TargetModel] = {}
    metrics: dict[str, dict[str, Any]] = {}
    arrays = {name: target_arrays(rows, name) for name in TARGETS}
    fitted = [name for name, (y, _, _) in arrays.items() if np.isfinite(y).sum() >= MIN_ROWS]
    for name in TARGETS:
        y, weight, noise = arrays[name]
        use = np.isfinite(y)
        if use.sum() < MIN_ROWS:
            metrics[name] = {"n_rows": int(use.sum()), "note": "not recorded"}
            continue
        announce(
            f"fitting {name} (target {fitted.index(name) + 1} of {len(fitted)}, "
            f"{counted(int(use.sum()), '(config, suite) row')}, cross-validated)"
        )
        data = (x[use], y[use], weight[use], noise[use], groups[use], strata[use])
        targets[name], metrics[name], oof = _fit_target(name, *data, encoder, hp)
        rows.loc[use, f"oof_{name}"] = oof
        if metrics[name]["n_groups"] < 2:
            notes.append(f"{name}: recorded for one group only, interval not cross-validated")
    announce("measuring what each feature is worth (permutation importances)")
    runs = from_runs(frame)  # what was measured: outcomes feed the fit alone
    importances = {
        name: permutation_importance(
            targets[name], encoder.columns, x, *target_arrays(rows, name)[:2], seed=hp.seed
        )
        for name in (QUALITY, "latency_p95")
        if name in targets
    }
    model = SelectorModel(
        encoder=encoder,
        targets=targets,
        configs=config_table(frame),
        evidence=_with_misfit(evidence(runs), rows, targets, x),
        case_scores=case_scores(runs),
        typical_input_chars=_typical_input_chars(frame),
        trained_keys=frozenset(rows["config_hash"] + "|" + rows["suite"]),
        coverage=COVERAGE,
        importances=importances,
        prompt_lengths=prompt_lengths(frame),
    )
    return TrainingResult(
        model=model,
        metrics=metrics,
        importances=importances,
        rows=rows,
        fingerprint=frame_fingerprint(frame),
        n_generations=len(runs),  # as stored results count them, outcomes apart
        n_rows=len(rows),
        grouping=grouping,
        seconds=time.perf_counter() - started,
        hyperparameters=hp,
        notes=notes,
    )


def training_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The (config, suite) aggregates a selector learns from: those with a successful
    generation or a measured latency."""
    rows = aggregate(frame)
    if rows.empty:
        return rows
    return rows[(rows["n"] > 0) | (rows["n_latency"] > 0)].reset_index(drop=True)


def target_arrays(rows: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The target on the fitting scale (log for positive targets; non-positive → NaN),
    the row weights and the rows' sampling variances."""
    values = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
    if name in LOG_TARGETS:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(values > 0, np.log(values), np.nan)
    count = rows["n"] if name == QUALITY else rows["n_latency"]
    n = count.to_numpy(dtype=float)
    noise = rows[f"{name}_noise"].to_numpy(dtype=float)
    return values, n / (n + N0), np.nan_to_num(noise, nan=0.0)


def _fit_target(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    noise: np.ndarray,
    groups: np.ndarray,
    strata: np.ndarray,
    encoder: FeatureEncoder,
    hp: Hyperparameters,
) -> tuple[TargetModel, dict[str, Any], np.ndarray]:
    """Cross-validated predictions, the calibrated final ensemble, and its errors."""
    members = fit_members(x, y, weight, encoder, hp, name)
    fold_of = np.zeros(len(y), dtype=int)
    n_groups = len(np.unique(groups))
    if n_groups >= 2:
        folds = grouped_folds(groups, strata, hp.n_splits)
        mean, spread = out_of_fold(x, y, weight, encoder, hp, name, folds)
        for k, (_, test) in enumerate(folds):
            fold_of[test] = k
    else:  # in-sample: optimistic, and said so in the notes
        mean, spread = TargetModel(name, members, 1, 0).predict_raw(x)
    floor = float(np.median(spread)) or float(np.median(np.abs(y - mean))) or 1e-6
    z = NormalDist().inv_cdf(0.5 + COVERAGE / 2)
    inside = np.zeros(len(y), dtype=bool)
    for k in np.unique(fold_of):
        held = fold_of == k
        others = ~held if (~held).any() else held
        c = _scale(y[others] - mean[others], noise[others], spread[others] + floor, weight[others])
        bound = z * np.sqrt((c * (spread[held] + floor)) ** 2 + noise[held])
        inside[held] = np.abs(y[held] - mean[held]) <= bound
    scale = _scale(y - mean, noise, spread + floor, weight)
    fitted = TargetModel(name, members, scale, floor, z)
    return fitted, _errors(name, y, mean, weight, noise, inside, n_groups), mean


def _with_misfit(
    table: pd.DataFrame, rows: pd.DataFrame, targets: dict[str, TargetModel], x: np.ndarray
) -> pd.DataFrame:
    """``table`` (evidence per config and task type) with, per target (fitting scale):

    - ``<target>_misfit_var``: how far the model was off for this very config on suites
      it did not see, the mean over its (config, suite) rows of the out-of-fold squared
      residual less the row's sampling noise (positive part). :mod:`selection.shrinkage`
      pools it with the model's average error.
    - ``<target>_self_shift``: the mean over those rows of out-of-fold minus in-sample
      prediction. The final model was fitted on the config's own rows, so its prediction
      for a measured config already leans toward that measurement; combining it with
      the same measurement again would count the evidence twice (a lucky 10 of 10 pulls
      the prior up, then the posterior up again). Adding the shift turns the prediction
      back into one that did not see the config's rows on this task type, which is also
      the prediction whose error the cross-validated interval describes. The part of
      out-of-fold minus in-sample that every row of a suite shares (the suite's mean) is
      taken out: it is the held-out fold's ignorance of that suite (its level, its input
      lengths), not the config's pull on its own prediction."""
    keys = ["config_hash", "task_type"]
    out = table.copy()
    index = pd.MultiIndex.from_frame(out[keys])
    by = [rows[k] for k in keys]
    for name, target in targets.items():
        if f"oof_{name}" not in rows:
            continue
        y, _, noise = target_arrays(rows, name)
        oof = rows[f"oof_{name}"].to_numpy(dtype=float)
        excess = (y - oof) ** 2 - noise
        per = pd.Series(excess).groupby(by).mean().clip(lower=0)
        out[f"{name}_misfit_var"] = per.reindex(index).to_numpy()
        lean = pd.Series(oof - target.predict_raw(x)[0])
        lean -= lean.groupby(rows["suite"]).transform("mean")
        shift = lean.groupby(by).mean()
        out[f"{name}_self_shift"] = shift.reindex(index).to_numpy()
    return out


def _scale(residual: np.ndarray, noise: np.ndarray, width: np.ndarray, weight: np.ndarray) -> float:
    """c with (c·width)² ≈ the residual variance left after the sampling noise."""
    residual_var = np.average(residual**2, weights=weight)
    model_var = max(
        residual_var - np.average(noise, weights=weight), MIN_MODEL_SHARE * residual_var
    )
    return float(np.sqrt(model_var / np.average(width**2, weights=weight)))


def grouped_folds(
    groups: np.ndarray, strata: np.ndarray, n_splits: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test indices with every group (suite) wholly on one side, stratified by
    task type where each type has enough rows."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_splits = min(n_splits, len(np.unique(groups)))
    codes = pd.factorize(strata)[0]
    if np.bincount(codes).min() >= n_splits:
        return list(StratifiedGroupKFold(n_splits=n_splits).split(groups, codes, groups))
    return list(GroupKFold(n_splits=n_splits).split(groups, codes, groups))


def out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    encoder: FeatureEncoder,
    hp: Hyperparameters,
    name: str,
    folds: list[tuple[np.ndarray, np.ndarray]],
    learned: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's prediction (ensemble mean and spread, fitting scale) by an ensemble fit
    on the other folds' rows, of those only the ``learned`` ones where given (a stored
    version's (config, suite) pairs, refit to be compared with a new version on the same
    folds); NaN where that leaves a fold nothing to fit on."""
    mean, spread = np.full(len(y), np.nan), np.full(len(y), np.nan)
    for train, test in folds:
        fit_on = train if learned is None else train[learned[train]]
        if len(fit_on) == 0:
            continue
        fold = fit_members(x[fit_on], y[fit_on], weight[fit_on], encoder, hp, name)
        mean[test], spread[test] = TargetModel(name, fold, 1, 0).predict_raw(x[test])
    return mean, spread


def fit_ensemble(
    rows: pd.DataFrame, name: str, encoder: FeatureEncoder, hp: Hyperparameters
) -> TargetModel:
    """An uncalibrated ensemble for one target on aggregated ``rows`` (used to refit a
    candidate without the rows it is compared on)."""
    y, weight, _ = target_arrays(rows, name)
    use = np.isfinite(y)
    members = fit_members(encoder.transform(rows)[use], y[use], weight[use], encoder, hp, name)
    return TargetModel(name, members, 1, 0)


def fit_members(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    encoder: FeatureEncoder,
    hp: Hyperparameters,
    target: str,
) -> list[Trees]:
    """The ensemble: each member sees Poisson(1) bootstrap weights of the rows and is
    kept as plain arrays (:class:`selection._forest.Trees`). No feature is kept from
    interacting with another: a template's effect may depend on the model, its size
    and settings (it does in real models). Where the data cannot tell such effects from
    noise the ensemble's spread widens, and measured configs are then judged by their
    measurements (:mod:`selection.shrinkage`)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(hp.seed)
    members = []
    with single_threaded():
        for i in range(hp.ensemble_size):
            boot = rng.poisson(1.0, size=len(y)) if hp.ensemble_size > 1 else np.ones(len(y))
            if not boot.any():
                boot[:] = 1
            member_x = _without_empty_columns(x, weight * boot)
            member = HistGradientBoostingRegressor(
                max_iter=hp.max_iter,
                learning_rate=hp.learning_rate,
                max_leaf_nodes=hp.max_leaf_nodes,
                min_samples_leaf=hp.min_samples_leaf,
                l2_regularization=hp.l2_regularization,
                categorical_features=encoder.categorical_mask,
                early_stopping=False,
                random_state=hp.seed + i,
            )
            members.append(
                Trees.from_estimator(member.fit(member_x, y, sample_weight=weight * boot))
            )
    return members


def _without_empty_columns(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x`` with each column that has no value on a positively weighted row set to 0.
    scikit-learn's binning fails on such a column ("window shape cannot be larger than
    input array shape"); it can tell nothing apart, so a constant is equivalent. It
    happens when a few rows (a candidate refit on an earlier version's rows, or a
    bootstrap draw) all lack a feature the whole data set has."""
    empty = ~np.isfinite(x[weight > 0]).any(axis=0)
    if not empty.any():
        return x
    filled = x.copy()
    filled[:, empty] = 0.0
    return filled


def _errors(
    name: str,
    y: np.ndarray,
    predicted: np.ndarray,
    weight: np.ndarray,
    noise: np.ndarray,
    inside: np.ndarray,
    n_groups: int,
) -> dict[str, Any]:
    rmse = float(np.sqrt(np.average((predicted - y) ** 2, weights=weight)))
    noise_rmse = float(np.sqrt(np.average(noise, weights=weight)))
    metrics: dict[str, Any] = {
        "rmse": rmse,
        "noise_rmse": noise_rmse,
        "model_rmse": float(np.sqrt(max(rmse**2 - noise_rmse**2, 0.0))),
        "coverage": float(np.average(inside, weights=weight)),
        "n_rows": len(y),
        "n_groups": n_groups,
    }
    if name in LOG_TARGETS:
        truth, estimate = np.exp(y), np.exp(predicted)
        metrics["relative_error"] = float(
            np.average(np.abs(estimate - truth) / truth, weights=weight)
        )
    else:
        truth, estimate = y, np.clip(predicted, 0, 1) if name == QUALITY else predicted
    metrics["mae"] = float(np.average(np.abs(estimate - truth), weights=weight))
    return metrics


def permutation_importance(
    target: TargetModel,
    columns: list[str],
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    *,
    seed: int,
) -> dict[str, float]:
    """Increase of the weighted mean absolute error (fitting scale) when one feature's
    column is shuffled; larger means the target leans on that feature more."""
    use = np.isfinite(y)
    x, y, weight = x[use], y[use], weight[use]
    rng = np.random.default_rng(seed)
    base = np.average(np.abs(target.predict_raw(x)[0] - y), weights=weight)
    result = {}
    for j, name in enumerate(columns):
        shuffled = x.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        error = np.average(np.abs(target.predict_raw(shuffled)[0] - y), weights=weight)
        result[name] = float(max(error - base, 0.0))
    return dict(sorted(result.items(), key=lambda item: -item[1]))


def _typical_input_chars(frame: pd.DataFrame) -> dict[str, float]:
    return {
        str(task): float(chars.median()) if chars.notna().any() else float("nan")
        for task, chars in frame.groupby("task_type")["input_chars"]
    }
