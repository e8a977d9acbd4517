"""Calibrating a bank from a matrix of stored scores, and checking it honestly.

Two checks come with every calibration, both on data the fit did not see:

- **held-out cells**: a seeded tenth of the (config, case) scores is left out, the model
  fitted on the rest, and its log-loss on the tenth set beside the log-loss of each
  case's plain mean (how much the item model knows beyond "this case is hard");
- **held-out configs**: the configs that ran every case are split in folds; each fold's
  configs are estimated from a random ``share`` of the cases (as the calibrated level
  runs them) by a bank fitted without them, against their known full-suite score.
  That gives the bank's mean absolute error, the raw coverage of its intervals, and
  ``interval_scale``: the factor that brings the intervals' root-mean-square
  standardised error to 1 (never below 1), which every later estimate's interval is
  widened by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evaluation.itembank._estimate import calibrated_estimate
from evaluation.itembank._fit import ItemFit, fit_2pl, information, log_loss, probabilities

"""The fewest configs, each with at least half the suite's cases scored, a bank is
calibrated from: below it the discriminations are mostly the prior."""
CHECK_SHARE = 0.1
FOLDS = 5
CHECK_DRAWS = 60  # the held-out configs' estimates: half an estimate's draws, for speed


@dataclass(frozen=True)
class Calibration:
    """A fit and how well it does on what it did not see (see the module)."""

    fit: ItemFit
    heldout_logloss: float
    baseline_logloss: float
    cv_configs: int
    cv_mae: float
    cv_coverage: float
    interval_scale: float


def most_informative(fit: ItemFit, k: int, thetas: np.ndarray | None = None) -> list[int]:
    """Kept for the benchmark's comparison: the calibrated level runs a random subset,
    which measured better (see ``_level``). ``k`` cases, in suite order: the cases
    sorted by difficulty are cut into ``k`` strata of (nearly) equal size, and each
    stratum gives its case with the most Fisher information over the abilities
    ``thetas`` (default: the bank's own configs).

    The plain top ``k`` by information was tried first and was biased: the cases it
    takes are those whose discrimination the fit overestimated (the winner's curse of
    choosing on estimates), which pulls every estimated ability toward the middle
    (held-out configs off by 8-15 points at 10% of a simulated suite). Strata keep the
    choice spread over the whole range of difficulty, so that no case stands far from
    the cases that were run."""
    at = fit.ability if thetas is None else thetas
    info = information(fit, at)
    by_difficulty = np.argsort(fit.difficulty, kind="stable")
    return sorted(
        int(stratum[np.argmax(info[stratum])]) for stratum in np.array_split(by_difficulty, k)
    )


def calibrate(
    y: np.ndarray, w: np.ndarray, *, share: float = CHECK_SHARE, seed: int = 0
) -> Calibration:
    """Fit the bank to scores ``y`` with weights ``w`` (configs × cases; see
    :func:`fit_2pl`) and measure it on held-out cells and held-out configs."""
    rng = np.random.default_rng(seed)
    cells = np.argwhere(w > 0)
    out = cells[rng.random(len(cells)) < 0.1]
    w_train = w.copy()
    w_train[out[:, 0], out[:, 1]] = 0
    part = fit_2pl(y, w_train)
    w_out = np.zeros_like(w)
    w_out[out[:, 0], out[:, 1]] = w[out[:, 0], out[:, 1]]
    held = log_loss(y, w_out, probabilities(part, part.ability))
    col_mean = (w_train * y).sum(0) / np.maximum(w_train.sum(0), 1e-9)
    base = log_loss(y, w_out, np.broadcast_to(np.clip(col_mean, 0.01, 0.99), y.shape))
    errors, covered, z2 = _held_out_configs(y, w, share, rng)
    return Calibration(
        fit=fit_2pl(y, w),
        heldout_logloss=held,
        baseline_logloss=base,
        cv_configs=len(errors),
        cv_mae=float(np.mean(errors)) if errors else float("nan"),
        cv_coverage=float(np.mean(covered)) if covered else float("nan"),
        interval_scale=max(1.0, math.sqrt(float(np.mean(z2)))) if z2 else 1.0,
    )


def _held_out_configs(
    y: np.ndarray, w: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[list[float], list[bool], list[float]]:
    """Absolute errors, coverage and squared standardised errors of the estimates of
    configs left out of the fit, from a random ``share`` of the cases (the configs that ran
    every case, in ``FOLDS`` folds)."""
    full = np.flatnonzero((w > 0).all(1))
    if len(full) < 2:
        return [], [], []
    n = y.shape[1]
    k = max(1, math.ceil(share * n))
    errors: list[float] = []
    covered: list[bool] = []
    z2: list[float] = []
    for fold in np.array_split(rng.permutation(full), min(FOLDS, len(full))):
        keep = np.setdiff1d(np.arange(len(y)), fold)
        fit = fit_2pl(y[keep], w[keep])
        spread = float(np.std(fit.ability)) or 1.0
        for j in fold:
            truth = float(y[j].mean())
            chosen = rng.choice(n, k, replace=False)  # as the calibrated level chooses
            got = calibrated_estimate(
                fit,
                {i: float(y[j, i]) for i in chosen},
                ability_mean=float(np.mean(fit.ability)),
                ability_sd=spread,
                draws=CHECK_DRAWS,
            )
            errors.append(abs(got.mean - truth))
            covered.append(got.low <= truth <= got.high)
            side = (got.high - got.mean) if truth >= got.mean else (got.mean - got.low)
            z2.append(((truth - got.mean) / max(side / 1.96, 1e-6)) ** 2)
    return errors, covered, z2
