"""The winner's curse: a candidate's estimate corrected for being chosen as the best of many.

A task type's candidates each have a quality estimate q̂_c with a standard deviation s_c
(:mod:`selection.shrinkage`: measurement and prediction combined). Picking the highest
q̂ picks, among many configs measured on a few cases each, the luckiest: the best of 60
means over 10 cases sits ~2.3 standard errors above its truth. Shrinking each estimate
toward the model's prediction does not remove this when the model's error variance is
inflated by a few configs it gets badly wrong (a context cliff, a three-way interaction):
a normal prior with that variance hardly shrinks anyone.

So the estimates are read the way Efron reads many z-values ("Tweedie's formula and
selection bias", JASA 106, 2011): q̂_c ~ N(q_c, s_c²), the true qualities q_c drawn from
a distribution G that is estimated from all the candidates at once, nonparametrically
(the Kiefer–Wolfowitz maximum likelihood on a grid of atoms, by EM: Jiang & Zhang, Ann.
Statist. 37, 2009; Koenker & Mizera, JASA 109, 2014), and each candidate is judged by
its posterior mean E[q_c | q̂_c] under G and its posterior standard deviation. That is the
Bayes rule under the estimated G, so choosing the highest of them does not reward luck:
a config measured 0.9 on 10 cases among dozens whose estimates cluster near 0.6 is read
as one of them, one measured 0.70 on 300 cases stays 0.70 (its s is small, G hardly
moves it). No shape is assumed for G: lumps (many configs alike, a few cut off by a
cliff), heavy tails and ceilings are what it is estimated to be.

With fewer than ``MIN_CANDIDATES`` candidates G cannot be estimated; the estimates are
then left as they are, and the answer says so (``corrected`` is False).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_CANDIDATES = 20
GRID_ATOMS = 200
"""Finer than the sd of a config measured on a few hundred cases, so that its own atom
can stay where it was measured."""
EM_ITERATIONS = 500
TOLERANCE = 1e-6
G_REFITS = 30
REFIT_ITERATIONS = 100
"""EM rarely meets ``TOLERANCE`` within ``EM_ITERATIONS``; after 100 iterations the
posterior means move by about 0.1 point more, far less than the refits' spread."""


@dataclass(frozen=True)
class Deconvolved:
    """Posterior mean and standard deviation of each true value under the estimated G."""

    mean: np.ndarray
    sd: np.ndarray


def deconvolve(estimate: np.ndarray, sd: np.ndarray) -> Deconvolved:
    """E[q | q̂] and sd(q | q̂) for q̂ ~ N(q, sd²), q ~ G, G the nonparametric maximum
    likelihood estimate on a grid spanning the estimates (module docstring). Kept for
    the last few inputs: every recommendation for a task type scores the same
    candidates."""
    estimate, sd = np.asarray(estimate, dtype=float), np.asarray(sd, dtype=float)
    return _deconvolve(estimate.tobytes(), sd.tobytes())


@functools.lru_cache(maxsize=8)
def _deconvolve(estimate_bytes: bytes, sd_bytes: bytes) -> Deconvolved:
    """The posterior under Ĝ, its variance widened by how much the posterior mean moves
    when G is estimated again from the candidates resampled (``G_REFITS`` times, a fixed
    seed so that the same data give the same answer). Under Ĝ alone the 90% interval of
    the candidate picked as best covered its truth in 27–88% of simulated task types
    (Ĝ is a few atoms; it is as sure of itself as if it were the true G); with the
    refits' spread, 73–98% (benchmarks/perf/selection_intervals.py, 18 cells of 60)."""
    estimate, sd = np.frombuffer(estimate_bytes), np.frombuffer(sd_bytes)
    atoms = np.linspace(estimate.min(), estimate.max(), GRID_ATOMS)
    log_lik = -0.5 * ((estimate[:, None] - atoms[None, :]) / sd[:, None]) ** 2
    lik = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    mean, variance = _posterior(lik, _npmle(lik, EM_ITERATIONS), atoms)
    rng = np.random.default_rng(0)
    refit_means = [
        _posterior(lik, _npmle(lik[rng.integers(0, len(lik), len(lik))], REFIT_ITERATIONS), atoms)[
            0
        ]
        for _ in range(G_REFITS)
    ]
    variance = variance + np.var(refit_means, axis=0)
    return Deconvolved(mean, np.sqrt(variance))


def _npmle(lik: np.ndarray, iterations: int) -> np.ndarray:
    """The Kiefer–Wolfowitz G on the grid: EM from the uniform (Jiang & Zhang 2009)."""
    g = np.full(lik.shape[1], 1.0 / lik.shape[1])
    for _ in range(iterations):
        posterior = lik * g
        posterior /= posterior.sum(axis=1, keepdims=True)
        updated = posterior.mean(axis=0)
        converged = np.max(np.abs(updated - g)) < TOLERANCE
        g = updated
        if converged:
            break
    return g


def _posterior(lik: np.ndarray, g: np.ndarray, atoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's posterior mean and variance under G = ``g`` on ``atoms``."""
    posterior = lik * g
    posterior /= posterior.sum(axis=1, keepdims=True)
    mean = posterior @ atoms
    return mean, np.maximum(posterior @ atoms**2 - mean**2, 0.0)


def correct_for_selection(table: pd.DataFrame, z: float) -> tuple[pd.DataFrame, bool]:
    """``table`` (scored candidates: ``quality``, ``quality_sd``, ``quality_low``,
    ``quality_high``) with quality and its interval replaced by the selection-corrected
    posterior (``z`` standard deviations either side), the uncorrected estimate kept as
    ``quality_uncorrected``; and whether the correction was made (enough candidates)."""
    out = table.copy()
    out["quality_uncorrected"] = out["quality"]
    if "quality_sd" not in out:
        return out, False
    q, sd = out["quality"].to_numpy(dtype=float), out["quality_sd"].to_numpy(dtype=float)
    usable = np.isfinite(q) & np.isfinite(sd) & (sd > 0)
    if usable.sum() < MIN_CANDIDATES:
        return out, False
    found = deconvolve(q[usable], sd[usable])
    mean, post_sd = q.copy(), sd.copy()
    mean[usable], post_sd[usable] = found.mean, found.sd
    out["quality"] = np.clip(mean, 0, 1)
    out["quality_sd"] = post_sd
    out["quality_low"] = np.clip(mean - z * post_sd, 0, 1)
    out["quality_high"] = np.clip(mean + z * post_sd, 0, 1)
    return out, True
