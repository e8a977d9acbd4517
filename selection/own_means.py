"""A measured config's own quality on a task type: the mean over its cases and a standard
error whose case variance is moderated toward the task type's pooled one. Read by the
shrinkage of measurements toward predictions (:mod:`selection.shrinkage`) and by the
suite mix that compares configs run on different suites (:mod:`selection.suite_mix`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selection.model import SelectorModel

PRIOR_DF = 4.0
"""Prior degrees of freedom of a moderated variance (the pool's weight beside k − 1)."""


def own_quality(model: SelectorModel, task_type: str) -> tuple[pd.Series, pd.Series]:
    """The task type's measured configs' own quality means and their standard errors
    (:func:`moderated_se`), by config hash."""
    evidence = model.evidence[model.evidence["task_type"] == task_type]
    table = evidence.set_index("config_hash")
    se = pd.Series(moderated_se(table, pooled_case_variance(evidence)), index=table.index)
    return table["quality_mean"].astype(float), se


def moderated_se(found: pd.DataFrame, pooled: float) -> np.ndarray:
    """Standard error of each config's measured mean with its case variance moderated
    toward the task type's pooled one (Smyth, SAGMB 3, 2004: the sample variance's k − 1
    degrees of freedom plus ``PRIOR_DF`` from the pool):

        s̃² = (PRIOR_DF·s²_pool + (k − 1)·s²) / (PRIOR_DF + k − 1),   se = s̃ / √k

    A variance from a few cases is itself noisy, and for 0/1 scores it is 0 whenever all
    k cases agree: 10 of 10 right would be a mean of 1.0 with no uncertainty, outweigh any
    prediction, and win every comparison. A single case (k = 1) gets the pooled variance.

    The moderated variance is never below the pooled one. For 0/1 scores a config's case
    variance is p̂(1 − p̂), a function of its own mean: among many configs above 0.5 the
    luckiest (9 or 10 of 10) would get the smallest standard error, so the estimate most
    inflated by luck would also be the most trusted (the winner's curse, compounded).
    A config whose cases truly vary more keeps its larger variance.

    A mean of exactly 0 or 1 (every case at the scale's end) is never given less than
    the Agresti–Coull standard error, √(p̃(1 − p̃)/(k + 4)) with p̃ = (k·ȳ + 2)/(k + 4):
    where the task type's configs all scored all or nothing, the pooled variance is 0,
    and 0 of 8 would be a certain 0."""
    k = found["n_cases"].to_numpy(dtype=float)
    own = (found["quality_se"].to_numpy(dtype=float) ** 2) * k
    own_df = np.where(np.isfinite(own) & (k > 1), k - 1, 0.0)
    mean = found["quality_mean"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (PRIOR_DF * pooled + own_df * np.nan_to_num(own)) / (PRIOR_DF + own_df)
        variance = np.maximum(variance, pooled)
        adjusted = (k * mean + 2) / (k + 4)
        boundary = np.sqrt(adjusted * (1 - adjusted) / (k + 4))
        at_end = (mean <= 0) | (mean >= 1)
        se = np.where(at_end, np.maximum(np.sqrt(variance / k), boundary), np.sqrt(variance / k))
        return np.where(k > 0, se, np.nan)


def pooled_case_variance(evidence: pd.DataFrame) -> float:
    """Variance of one case's quality pooled over the task type's configs: the mean of
    their case variances weighted by degrees of freedom (0.25, the most a 0–1 score can
    have, when no config has two cases)."""
    df = (evidence["n_cases"] - 1).clip(lower=0)
    variances = evidence["quality_se"] ** 2 * evidence["n_cases"]
    use = variances.notna() & (df > 0)
    if not use.any():
        return 0.25
    return float(np.average(variances[use], weights=df[use]))
