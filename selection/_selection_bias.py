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

One G for every candidate treats each model's configs as draws from one distribution.
A model with few candidates (``LEVEL_SPREAD``: fewer than an equal share of them beyond
chance) whose level the task type's multilevel fit places less surely than the others'
is read under G widened by that excess (:func:`level_spread`), so that its best configs
are not merged into the well-measured models' mass.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from selection.multilevel import Fit

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
LEVEL_SPREAD = True
"""Read a thin model's candidates under G widened by its level's excess variance
(:func:`level_spread`); False keeps one G for all (the code before; issue 50's results,
"the thin-model level spread rebuilt": uneven world at 10,000 generations, +4.0 points
over 4 tune units, +2.0 over 5 confirmation units; worlds with no thin model unchanged)."""


@dataclass(frozen=True)
class Deconvolved:
    """Posterior mean and standard deviation of each true value under the estimated G."""

    mean: np.ndarray
    sd: np.ndarray


def deconvolve(
    estimate: np.ndarray, sd: np.ndarray, spread: np.ndarray | None = None
) -> Deconvolved:
    """E[q | q̂] and sd(q | q̂) for q̂ ~ N(q, sd²), q ~ G, G the nonparametric maximum
    likelihood estimate on a grid spanning the estimates (module docstring). Kept for
    the last few inputs: every recommendation for a task type scores the same
    candidates. ``spread``: per estimate, the sd τ its level adds to G
    (:func:`level_spread`); rows with τ > 0 are read under G widened by N(0, τ²), the
    others (and G itself) as without it."""
    estimate, sd = np.asarray(estimate, dtype=float), np.asarray(sd, dtype=float)
    if spread is None or not np.any(spread > 0):
        return _deconvolve(estimate.tobytes(), sd.tobytes())
    spread = np.asarray(spread, dtype=float)
    return _deconvolve_widened(estimate.tobytes(), sd.tobytes(), spread.tobytes())


@functools.lru_cache(maxsize=8)
def _deconvolve(estimate_bytes: bytes, sd_bytes: bytes) -> Deconvolved:
    """The posterior under Ĝ, its variance widened by how much the posterior mean moves
    when G is estimated again from the candidates resampled (``G_REFITS`` times, a fixed
    seed so that the same data give the same answer). Under Ĝ alone the 90% interval of
    the candidate picked as best covered its truth in 27–88% of simulated task types
    (Ĝ is a few atoms; it is as sure of itself as if it were the true G); with the
    refits' spread, 73–98% (benchmarks/perf/selection_intervals.py, 18 cells of 60)."""
    estimate, sd = np.frombuffer(estimate_bytes), np.frombuffer(sd_bytes)
    atoms, lik, g, refits = _estimated_g(estimate, sd)
    mean, variance = _posterior(lik, g, atoms)
    refit_means = [_posterior(lik, refit, atoms)[0] for refit in refits]
    variance = variance + np.var(refit_means, axis=0)
    return Deconvolved(mean, np.sqrt(variance))


@functools.lru_cache(maxsize=8)
def _deconvolve_widened(estimate_bytes: bytes, sd_bytes: bytes, spread_bytes: bytes) -> Deconvolved:
    """:func:`_deconvolve` with each row whose ``spread`` τ is positive read under G
    widened by N(0, τ²): given atom a, q̂ − a ~ N(0, s² + τ²) and E[q | q̂, a] =
    a + f·(q̂ − a), Var = f·s², f = τ²/(s² + τ²) (the level adds τ² to the truth's spread
    around a, so the candidate's own estimate counts for that share). G and its refits
    are estimated from every row as without the spread; rows with τ = 0 get exactly
    :func:`_deconvolve`'s figures."""
    estimate, sd = np.frombuffer(estimate_bytes), np.frombuffer(sd_bytes)
    spread = np.frombuffer(spread_bytes)
    atoms, lik, g, refits = _estimated_g(estimate, sd)
    mean, variance = _posterior(lik, g, atoms)
    refit_means = [_posterior(lik, refit, atoms)[0] for refit in refits]
    wide = spread > 0
    reader = _Widened(estimate[wide], sd[wide], spread[wide], atoms)
    mean[wide], variance[wide] = reader.posterior(g)
    for found, refit in zip(refit_means, refits, strict=True):
        found[wide] = reader.posterior(refit)[0]
    variance = variance + np.var(refit_means, axis=0)
    return Deconvolved(mean, np.sqrt(variance))


def _estimated_g(
    estimate: np.ndarray, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """The grid of atoms, each row's likelihood on it, Ĝ and the ``G_REFITS`` refits'
    G (from the rows resampled, a fixed seed)."""
    atoms = np.linspace(estimate.min(), estimate.max(), GRID_ATOMS)
    log_lik = -0.5 * ((estimate[:, None] - atoms[None, :]) / sd[:, None]) ** 2
    lik = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    g = _npmle(lik, EM_ITERATIONS)
    rng = np.random.default_rng(0)
    refits = [
        _npmle(lik[rng.integers(0, len(lik), len(lik))], REFIT_ITERATIONS) for _ in range(G_REFITS)
    ]
    return atoms, lik, g, refits


@dataclass(frozen=True)
class _Widened:
    """Rows read under a G widened by N(0, τ²) each (:func:`_deconvolve_widened`)."""

    estimate: np.ndarray
    sd: np.ndarray
    spread: np.ndarray
    atoms: np.ndarray

    def posterior(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = self.sd**2 + self.spread**2
        offset = self.estimate[:, None] - self.atoms[None, :]
        log_lik = -0.5 * offset**2 / total[:, None]
        weights = np.exp(log_lik - log_lik.max(axis=1, keepdims=True)) * g
        weights /= weights.sum(axis=1, keepdims=True)
        share = (self.spread**2 / total)[:, None]
        within = self.atoms[None, :] + share * offset
        mean = np.sum(weights * within, axis=1)
        second = np.sum(weights * within**2, axis=1)
        return mean, np.maximum(second - mean**2, 0.0) + share[:, 0] * self.sd**2


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


def correct_for_selection(
    table: pd.DataFrame, z: float, fit: Fit | None = None
) -> tuple[pd.DataFrame, bool]:
    """``table`` (scored candidates: ``quality``, ``quality_sd``, ``quality_low``,
    ``quality_high``) with quality and its interval replaced by the selection-corrected
    posterior (``z`` standard deviations either side), the uncorrected estimate kept as
    ``quality_uncorrected``; and whether the correction was made (enough candidates).
    ``fit``: the task type's multilevel fit, for a thin model's level
    (:func:`level_spread`, with ``LEVEL_SPREAD``)."""
    out = table.copy()
    out["quality_uncorrected"] = out["quality"]
    if "quality_sd" not in out:
        return out, False
    q, sd = out["quality"].to_numpy(dtype=float), out["quality_sd"].to_numpy(dtype=float)
    usable = np.isfinite(q) & np.isfinite(sd) & (sd > 0)
    if usable.sum() < MIN_CANDIDATES:
        return out, False
    spread = level_spread(table[usable], fit) if LEVEL_SPREAD and fit is not None else None
    found = deconvolve(q[usable], sd[usable], spread)
    mean, post_sd = q.copy(), sd.copy()
    mean[usable], post_sd[usable] = found.mean, found.sd
    out["quality"] = np.clip(mean, 0, 1)
    out["quality_sd"] = post_sd
    out["quality_low"] = np.clip(mean - z * post_sd, 0, 1)
    out["quality_high"] = np.clip(mean + z * post_sd, 0, 1)
    return out, True


def level_spread(candidates: pd.DataFrame, fit: Fit) -> np.ndarray | None:
    """Per row of ``candidates`` (the usable ones), the sd τ its model's level adds to G;
    None where no row gets one. Only where the fit is ample (:attr:`Fit.ample`: where it
    is not, a model's level is placed by chance more or less surely) and only for a thin
    model: one with fewer candidates than an equal share of them beyond chance (binomial,
    one-sided, at :data:`selection.multilevel.CHECK_ALPHA`); every other row has τ = 0.
    For model m, V_m is the posterior variance of the mean reading of its candidates less
    the mean reading of all (:meth:`Fit.contrast_variance`; each reading counted by the
    share of its estimate the fit's reading makes, ``quality_weight``, 0 where the own
    cases are the measurement), V̄ its mean over the candidates, τ_m² = max(V_m − V̄, 0):
    the level error the model adds beyond what the candidates share on average."""
    if not fit.ample or "model" not in candidates:
        return None
    models = candidates["model"].astype(str).to_numpy()
    names = np.unique(models)
    thin = thin_models(models)
    if not thin:
        return None
    weight = pd.to_numeric(candidates.get("quality_weight"), errors="coerce")
    weight = weight if weight is not None else pd.Series(0.0, index=candidates.index)
    weight = weight.fillna(0.0).to_numpy(dtype=float)
    own = candidates.get("quality_measurement_own")
    if own is not None:
        weight = np.where(own.fillna(False).to_numpy(dtype=bool), 0.0, weight)
    variance = {
        name: fit.contrast_variance(candidates.index.astype(str), weight, models == name)
        for name in names
    }
    average = float(np.mean([variance[m] for m in models]))
    tau = np.zeros(len(models))
    for name in thin:
        tau[models == name] = math.sqrt(max(variance[name] - average, 0.0))
    return tau if np.any(tau > 0) else None


def thin_models(models: np.ndarray) -> list[str]:
    """The models of ``models`` (one name per candidate) with fewer candidates than an
    equal share of them beyond chance: binomial, one-sided, at
    :data:`selection.multilevel.CHECK_ALPHA`, against 1 / the number of models. A model
    cut short in a world where the others were run on every setting is; the least-run
    model of a balanced grid is not."""
    from selection.multilevel import CHECK_ALPHA

    names, counts = np.unique(np.asarray(models, dtype=str), return_counts=True)
    return [
        str(name)
        for name, count in zip(names, counts, strict=True)
        if _binomial_below(int(count), len(models), 1 / len(names)) < CHECK_ALPHA
    ]


def _binomial_below(count: int, total: int, share: float) -> float:
    """P(X ≤ ``count``) for X ~ Binomial(``total``, ``share``)."""
    from scipy import stats

    return float(stats.binom.cdf(count, total, share))
