"""The two-parameter logistic item model, fitted by hand with numpy and scipy.

P(config j answers case i) = sigmoid(a_i · (theta_j - b_i)), a_i = exp(alpha_i). A score
in [0, 1] (a mean over samples, a partial-credit metric) enters as a fractional outcome
of the same Bernoulli likelihood. The fit is joint maximum a posteriori: every ability,
difficulty and log discrimination at once by L-BFGS with the analytic gradient, under
priors theta ~ N(0, 1) (which also fixes the scale), alpha ~ N(0, 0.5²), b ~ N(0, 2²).
The priors are what make a bank of ten or twenty configs usable: unregularised joint
maximum likelihood sends the discrimination of a case every config got right to
infinity. Each item's uncertainty is the Laplace approximation of its own posterior
with the abilities held at their estimates (a 2×2 covariance of alpha and b per case).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

ALPHA_SD = 0.5
DIFFICULTY_SD = 2.0
ABILITY_SD = 1.0
_EPS = 1e-9


@dataclass(frozen=True)
class ItemFit:
    """A fitted bank: per case ``difficulty`` (b), ``discrimination`` (a) and the
    covariance of (log a, b) in ``cov`` (cases × 2 × 2); per config ``ability``."""

    difficulty: np.ndarray
    discrimination: np.ndarray
    cov: np.ndarray
    ability: np.ndarray
    ability_se: np.ndarray


def log_loss(y: np.ndarray, w: np.ndarray, p: np.ndarray) -> float:
    """The weighted mean Bernoulli log-loss of fractional outcomes ``y`` under ``p``."""
    p = np.clip(p, _EPS, 1 - _EPS)
    total = w.sum()
    if total <= 0:
        return float("nan")
    return float(-(w * (y * np.log(p) + (1 - y) * np.log1p(-p))).sum() / total)


def fit_2pl(y: np.ndarray, w: np.ndarray, *, max_iter: int = 500) -> ItemFit:
    """Fit the model to outcomes ``y`` (configs × cases, values in [0, 1]) with weights
    ``w`` (how many samples each cell holds; 0 where a config did not run a case)."""
    n_configs, n_items = y.shape
    y = np.where(w > 0, y, 0.0)
    # start: abilities from each config's mean, difficulties from each case's mean
    rows = (w * y).sum(1) / np.maximum(w.sum(1), _EPS)
    cols = (w * y).sum(0) / np.maximum(w.sum(0), _EPS)
    theta0 = _logit(rows) - _logit(rows).mean()
    theta0 = theta0 / max(theta0.std(), 1e-3) if n_configs > 1 else theta0
    b0 = -_logit(cols)
    x0 = np.concatenate([theta0, np.zeros(n_items), b0])

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta, alpha, b = x[:n_configs], x[n_configs : n_configs + n_items], x[-n_items:]
        a = np.exp(alpha)
        d = theta[:, None] - b[None, :]
        z = a[None, :] * d
        p = expit(z)
        ll = w * (y * _log_sigmoid(z) + (1 - y) * _log_sigmoid(-z))
        r = w * (y - p)
        nll = -ll.sum()
        nll += 0.5 * (theta**2).sum() / ABILITY_SD**2
        nll += 0.5 * (alpha**2).sum() / ALPHA_SD**2 + 0.5 * (b**2).sum() / DIFFICULTY_SD**2
        g_theta = -(r * a[None, :]).sum(1) + theta / ABILITY_SD**2
        g_alpha = -(r * z).sum(0) + alpha / ALPHA_SD**2
        g_b = (r * a[None, :]).sum(0) + b / DIFFICULTY_SD**2
        return float(nll), np.concatenate([g_theta, g_alpha, g_b])

    done = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    x = done.x
    theta, alpha, b = x[:n_configs], x[n_configs : n_configs + n_items], x[-n_items:]
    a = np.exp(alpha)
    z = a[None, :] * (theta[:, None] - b[None, :])
    v = w * expit(z) * (1 - expit(z))
    # item Laplace: information of (alpha, b) given the abilities, plus the priors
    h_aa = (v * z**2).sum(0) + 1 / ALPHA_SD**2
    h_bb = (v * a[None, :] ** 2).sum(0) + 1 / DIFFICULTY_SD**2
    h_ab = -(v * z * a[None, :]).sum(0)
    det = h_aa * h_bb - h_ab**2
    cov = np.stack(
        [np.stack([h_bb / det, -h_ab / det], -1), np.stack([-h_ab / det, h_aa / det], -1)], -2
    )
    theta_info = (v * a[None, :] ** 2).sum(1) + 1 / ABILITY_SD**2
    return ItemFit(
        difficulty=b,
        discrimination=a,
        cov=cov,
        ability=theta,
        ability_se=1 / np.sqrt(theta_info),
    )


def probabilities(fit: ItemFit, theta: np.ndarray) -> np.ndarray:
    """P(correct) for abilities ``theta`` (any shape) on every case (last axis)."""
    return expit(fit.discrimination * (np.asarray(theta)[..., None] - fit.difficulty))


def information(fit: ItemFit, thetas: np.ndarray) -> np.ndarray:
    """Each case's Fisher information about ability, a² p (1 - p), averaged over
    ``thetas`` (the abilities of the configs the bank rests on)."""
    p = probabilities(fit, thetas)
    return (fit.discrimination**2 * p * (1 - p)).mean(0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.02, 0.98)
    return np.log(p / (1 - p))


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)
