"""How far raters agree with each other, and a judge model with the raters.

Inter-rater: weighted Cohen's kappa (``sklearn.metrics.cohen_kappa_score``, quadratic
weights by default: a 4 against a 5 is a small disagreement, a 1 against a 5 a large
one), over the generations both raters rated, with a seeded percentile bootstrap
interval over those generations. Kappa is undefined when chance agreement is perfect
(both raters gave one and the same grade to everything); it is then reported as None.

Judge against humans: Spearman's rho per criterion between the judge's stars and the
raters' mean stars over the generations both scored, with the Fisher-z interval of
:func:`evaluation.statistics.spearman_interval` (variance 1.06/(n − 3)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.statistics import spearman_interval

Weights = Literal["linear", "quadratic"]
STAR_LABELS: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class KappaEstimate:
    """Weighted kappa of two raters over ``n`` shared items; None when undefined."""

    n: int
    kappa: float | None
    ci: tuple[float, float] | None
    weights: str
    note: str = ""
    rater_a: str = ""
    rater_b: str = ""
    criterion: str = ""


def weighted_kappa(
    a: Sequence[int] | np.ndarray,
    b: Sequence[int] | np.ndarray,
    *,
    labels: Sequence[int] = STAR_LABELS,
    weights: Weights = "quadratic",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> KappaEstimate:
    """Cohen's kappa of two aligned rating vectors with ``weights``, and a percentile
    bootstrap interval over items (resamples where kappa is undefined are dropped)."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"rating vectors differ in length: {x.size} vs {y.size}")
    label_list = list(labels)
    unknown = sorted(set(x.tolist() + y.tolist()) - set(label_list))
    if unknown:
        raise ValueError(f"ratings {unknown} are not among the labels {label_list}")
    n = int(x.size)
    if n < 2:
        return KappaEstimate(n, None, None, weights, f"{n} shared item(s): kappa undefined")
    xi, yi = _index(label_list, x), _index(label_list, y)
    w = _weight_matrix(len(label_list), weights)
    point = _kappa_batch(xi[None, :], yi[None, :], w)[0]
    if np.isnan(point):
        note = "both raters gave one and the same grade throughout: kappa undefined"
        return KappaEstimate(n, None, None, weights, note)
    from sklearn.metrics import cohen_kappa_score  # here: scikit-learn takes seconds to load

    kappa = float(cohen_kappa_score(x, y, labels=label_list, weights=weights))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot = _kappa_batch(xi[idx], yi[idx], w)
    boot = boot[~np.isnan(boot)]
    alpha = 1 - confidence
    ci = None
    note = ""
    if boot.size >= 0.9 * n_resamples:
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        ci = (float(lo), float(hi))
    else:
        note = "too many bootstrap resamples without a defined kappa: interval undefined"
    return KappaEstimate(n, kappa, ci, weights, note)


def _index(labels: list[int], values: np.ndarray) -> np.ndarray:
    where = {v: i for i, v in enumerate(labels)}
    return np.array([where[v] for v in values.tolist()], dtype=int)


def _weight_matrix(k: int, weights: Weights) -> np.ndarray:
    grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    if weights == "quadratic":
        return grid**2
    if weights == "linear":
        return grid
    raise ValueError(f"weights must be 'linear' or 'quadratic', got {weights!r}")


def _kappa_batch(xi: np.ndarray, yi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted kappa, 1 − Σ w·O / Σ w·E (the formula of ``cohen_kappa_score``), for each
    row of label-index matrices at once; NaN where Σ w·E = 0."""
    k = w.shape[0]
    rows, n = xi.shape
    flat = (np.arange(rows)[:, None] * k * k + xi * k + yi).ravel()
    observed = np.bincount(flat, minlength=rows * k * k).reshape(rows, k, k) / n
    expected = observed.sum(axis=2)[:, :, None] * observed.sum(axis=1)[:, None, :]
    den = (w * expected).sum(axis=(1, 2))
    num = (w * observed).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 1 - num / np.where(den > 0, den, 1), np.nan)


def inter_rater_agreement(
    ratings: pd.DataFrame,
    *,
    weights: Weights = "quadratic",
    confidence: float = 0.95,
    seed: int = 0,
) -> list[KappaEstimate]:
    """Weighted kappa for every two raters and every criterion, over the generations
    both rated; ``ratings`` has rater, generation_id, criterion, stars (current rows)."""
    stars = ratings[ratings["stars"].notna()]
    if "current" in stars.columns:
        stars = stars[stars["current"].astype(bool)]
    out: list[KappaEstimate] = []
    for criterion, part in stars.groupby("criterion", sort=True):
        wide = part.pivot_table(
            index="generation_id", columns="rater", values="stars", aggfunc="last"
        )
        for r1, r2 in combinations(sorted(wide.columns), 2):
            both = wide[[r1, r2]].dropna().astype(int)
            est = weighted_kappa(
                both[r1].to_numpy(),
                both[r2].to_numpy(),
                weights=weights,
                confidence=confidence,
                seed=seed,
            )
            out.append(
                KappaEstimate(
                    est.n, est.kappa, est.ci, est.weights, est.note, r1, r2, str(criterion)
                )
            )
    return out


@dataclass(frozen=True)
class RankAgreement:
    """Spearman's rho between judge and human stars on one criterion."""

    criterion: str
    n: int
    rho: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    note: str = ""


def judge_human_agreement(
    human: pd.DataFrame,
    judge: pd.DataFrame,
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[RankAgreement]:
    """Per criterion both have: Spearman's rho between the judge's stars and the mean
    human stars per generation. Both frames have generation_id, criterion, stars (NaN
    stars — unscored judgements — are left out)."""
    h = (
        human.dropna(subset=["stars"])
        .groupby(["criterion", "generation_id"])["stars"]
        .mean()
        .rename("human")
    )
    j = (
        judge.dropna(subset=["stars"])
        .groupby(["criterion", "generation_id"])["stars"]
        .mean()
        .rename("judge")
    )
    both = pd.concat([h, j], axis=1, join="inner").reset_index()
    out: list[RankAgreement] = []
    for criterion in sorted(set(h.index.get_level_values(0)) & set(j.index.get_level_values(0))):
        part = both[both["criterion"] == criterion]
        rho, ci, p, note = spearman_interval(
            part["judge"].to_numpy(), part["human"].to_numpy(), confidence=confidence, seed=seed
        )
        note = note.replace("configs", "generations")
        out.append(RankAgreement(str(criterion), len(part), rho, ci, p, note))
    return out
