"""Multiplicity adjustment of a family of p-values: "holm" (Holm 1979, family-wise error;
computed here, as statsmodels computes it) or "fdr_bh" (Benjamini–Hochberg 1995, false
discovery rate; ``statsmodels.stats.multitest.multipletests``). numpy only until
Benjamini–Hochberg is asked for, so stored p-values can be adjusted again cheaply."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

Adjustment = Literal["holm", "fdr_bh"]
ADJUSTMENT_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}


def adjust_p_values(
    p_values: list[float | None], alpha: float, method: Adjustment
) -> tuple[list[float | None], list[bool]]:
    """Adjusted p-values and rejections (Holm, or ``multipletests(..., method=method)``);
    None or NaN (undefined) p-values are left out of the family and stay None / not
    rejected (a NaN in the family would make its own adjusted p NaN, read as 0 by a
    caller that clips it)."""
    defined = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    p_adj: list[float | None] = [None] * len(p_values)
    reject = [False] * len(p_values)
    if defined:
        family = np.array([p_values[i] for i in defined], dtype=float)
        if method == "holm":
            rej, adj = _holm(family, alpha)
        else:  # statsmodels takes a second to import: only this method needs it
            from statsmodels.stats.multitest import multipletests

            rej, adj, _, _ = multipletests(family, alpha=alpha, method=method)
        for i, r, a in zip(defined, rej, adj, strict=True):
            p_adj[i], reject[i] = float(a), bool(r)
    return p_adj, reject


def _holm(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjustment (Holm 1979), as ``multipletests(method="holm")``
    computes it: the i-th smallest of m p-values is rejected while every smaller one
    was and it is ≤ alpha / (m − i + 1); adjusted p = running maximum of
    (m − i + 1)·p₍ᵢ₎, capped at 1. Not delegated because statsmodels' holm branch calls
    ``gc.collect()`` on every call: 0.2 s of CPU in a process with Prefect loaded, ten and
    more calls per sweep's comparison and report."""
    m = len(p)
    order = np.argsort(p)
    ranked = p[order]
    multipliers = np.arange(m, 0, -1)
    reject, adjusted = np.empty(m, dtype=bool), np.empty(m)
    reject[order] = np.logical_and.accumulate(ranked <= alpha / multipliers)
    adjusted[order] = np.minimum(np.maximum.accumulate(ranked * multipliers), 1.0)
    return reject, adjusted
