"""Configs that differ only in their generation settings share what they measure, as
far as the data says settings do not matter.

The selector pools measured latency quantiles this way (:mod:`selection.shrinkage`, over
configs that differ only in sampling settings); quality is read through the richer
multilevel model of :mod:`selection.multilevel`, which also shares a setting's effect
across (model, template) groups. The model below is written for quality means; for
latency y_c is a log quantile.

A task type's measured configs fall into groups of the same model and template; within
a group they differ only in settings (temperature, top_p, num_ctx, num_predict, …).
Each config's measured mean y_c (sampling variance v_c, reruns of a case one case) is
read through a random-effects model (a one-way meta-analysis per group, with a variance
common to the task type's groups):

    y_c = θ_c + ε_c,  ε_c ~ N(0, v_c);   θ_c = μ_g + e_c,  e_c ~ N(0, τ²)

τ², how much settings move quality within a group, is estimated from the data by the
method of moments (DerSimonian & Laird, Control. Clin. Trials 7, 1986, over all groups
at once: Cochran's Q about each group's fixed-effect mean, less its degrees of freedom,
truncated at 0). Each config's estimate is then its best linear unbiased prediction
(empirical Bayes: Henderson, Biometrics 31, 1975):

    w_c = τ² / (τ² + v_c),   μ̂_g = Σ y_c/(τ² + v_c) / Σ 1/(τ² + v_c)
    θ̂_c = μ̂_g + w_c·(y_c − μ̂_g),   Var(θ̂_c − θ_c) = w_c·v_c + (1 − w_c)²·Var(μ̂_g)

Where settings do not change quality (τ² ≈ 0) the group's configs pool their cases: a
config measured on 26 cases is estimated from the group's hundred and more, so ties in
truth stay ties instead of being ranked by luck. Where they do (a truncating num_ctx, a
model sensitive to temperature), τ² is large, w_c near 1, and a config keeps its own
measurement. A group of one is its own measurement (θ̂ = y, variance v).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def settings_variance(y: np.ndarray, v: np.ndarray, groups: Sequence[Hashable]) -> float:
    """τ²: the between-settings variance of true quality within a group, by the
    DerSimonian–Laird moment estimator pooled over groups (0 when the spread of the
    measured means is no more than their sampling noise)."""
    q = df = c = 0.0
    for members in _members(groups).values():
        w = 1.0 / v[members]
        fixed = np.sum(w * y[members]) / np.sum(w)
        q += float(np.sum(w * (y[members] - fixed) ** 2))
        df += len(members) - 1
        c += float(np.sum(w) - np.sum(w**2) / np.sum(w))
    if df == 0 or c <= 0:
        return 0.0
    return max(0.0, (q - df) / c)


def pool(
    y: np.ndarray, v: np.ndarray, groups: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Each config's pooled estimate of its true mean, that estimate's standard error,
    and τ² (module docstring). ``y``/``v``: measured means and their sampling variances
    (finite, v > 0); ``groups``: each config's (model, template)."""
    y, v = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    tau2 = settings_variance(y, v, groups)
    mean, se = y.copy(), np.sqrt(v)
    for members in _members(groups).values():
        total = 1.0 / (tau2 + v[members])
        centre = np.sum(total * y[members]) / np.sum(total)
        centre_var = 1.0 / np.sum(total)
        w = tau2 / (tau2 + v[members])
        mean[members] = centre + w * (y[members] - centre)
        se[members] = np.sqrt(w * v[members] + (1 - w) ** 2 * centre_var)
    return mean, se, tau2


def _members(groups: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    found: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        found.setdefault(group, []).append(i)
    return {g: np.array(i) for g, i in found.items()}
