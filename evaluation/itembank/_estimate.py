"""A config's full-suite score estimated from the cases it ran, with an interval.

The full-suite score is the mean over every case of the suite; the cases run are known,
so only the others are estimated. For each of ``draws`` draws of the item parameters
(from each case's Laplace posterior: the bank's own uncertainty) the ability's posterior
is computed on a grid from the cases run; the point estimate is the mean over draws of
the posterior expectation of the score the other cases would add; the interval's draws
take an ability from its posterior and the other cases' outcomes as Bernoulli
(what a run of the whole suite would really have scored, not its expectation). The
interval is then widened by the bank's ``interval_scale``, measured when the bank was
calibrated by estimating held-out configs whose full-suite scores are known
(``_bank``): what the item model cannot know about a suite shows there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from evaluation.statistics.student_t import t_quantile
from evaluation.wording import ESTIMATED_FROM, MEASURED_IN_FULL, NOT_A_SAMPLE

if TYPE_CHECKING:  # the fit loads scipy; a subset's plain mean (`show`) needs none of it
    from evaluation.itembank._fit import ItemFit

UNTRUSTED = "untrusted: predicts held-out scores worse than case means"
GRID = np.linspace(-5.0, 5.0, 81)
DRAWS = 120
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A full-suite score: ``mean`` in [``low``, ``high``] from ``cases_run`` of
    ``cases_total`` cases; ``method`` says how (``calibrated``: the item bank;
    ``subset mean``: the plain mean of the cases run, a finite-population interval;
    ``full``: every case was run, the mean is the score) and ``note`` why not
    calibrated when it is not; ``bank`` the item bank version a calibrated one used (so
    that a past experiment's estimate that changed with a new version says why);
    ``untrusted``: that bank predicts held-out scores worse than each case's plain mean
    (`evalflow bank` warns), so every line showing its estimate says so too;
    ``first_cases``: a subset mean of the suite's first cases (a smoke or ``--limit``
    run), which are no sample of it, and its line says so; ``of_named``: the spec's
    ``cases:`` count where they are the first of those (in suite order)."""

    mean: float
    low: float
    high: float
    cases_run: int
    cases_total: int
    method: str
    note: str = ""
    bank: int = 0
    untrusted: bool = False
    first_cases: bool = False  # a subset mean of the suite's first cases (smoke, --limit)
    of_named: int = 0

    def text(self, digits: int = 3) -> str:
        """``0.712 [0.668, 0.751] estimated from 30 of 300 cases (item bank v2)``: the one
        place an estimate is rendered, so the untrusted bank's caveat reaches them all."""
        if self.method == "full":  # the suite's own score: no interval, nothing to place
            return f"{self.mean:.{digits}f} on all {self.cases_total} cases: {MEASURED_IN_FULL}"
        shown = f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"
        if self.method == "calibrated":
            version = f"item bank v{self.bank}" if self.bank else ""
            if self.untrusted:
                version = f"{version or 'item bank'}; {UNTRUSTED}"
            version = f" ({version})" if version else ""
            return f"{shown} {ESTIMATED_FROM} {self.cases_run} of {self.cases_total} cases{version}"
        if self.first_cases and self.of_named:
            return (
                f"{shown} mean of the first {self.cases_run} of the spec's {self.of_named} "
                f"named cases (in suite order) of the suite's {self.cases_total}, {NOT_A_SAMPLE}"
            )
        if self.first_cases:
            return (
                f"{shown} mean of the suite's first {self.cases_run} of {self.cases_total} "
                f"cases, {NOT_A_SAMPLE}"
            )
        return f"{shown} subset mean from {self.cases_run} of {self.cases_total} cases"


def calibrated_estimate(
    fit: ItemFit,
    observed: dict[int, float],
    *,
    ability_mean: float = 0.0,
    ability_sd: float = 1.0,
    interval_scale: float = 1.0,
    draws: int = DRAWS,
    seed: int = 0,
) -> Estimate:
    """The full-suite score of a config that scored ``observed`` (case index → score
    in [0, 1], the mean over its samples) on some of the bank's cases."""
    from scipy.special import expit

    n = len(fit.difficulty)
    run = np.fromiter(observed, dtype=int, count=len(observed))
    y = np.fromiter(observed.values(), dtype=float, count=len(observed))
    rest = np.setdiff1d(np.arange(n), run)
    rng = np.random.default_rng(seed)
    alpha, b = _draw_items(fit, draws, rng)  # draws × cases
    grid = GRID * max(ability_sd, 0.5) + ability_mean
    # the ability's posterior on the grid, per draw of the items
    z = np.exp(alpha[:, None, run]) * (grid[None, :, None] - b[:, None, run])
    loglik = (y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)).sum(-1)
    logpost = loglik - 0.5 * ((grid - ability_mean) / max(ability_sd, 0.5)) ** 2
    post = np.exp(logpost - logpost.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    p_rest = expit(np.exp(alpha[:, None, rest]) * (grid[None, :, None] - b[:, None, rest]))
    expected = p_rest.sum(-1)  # draws × grid: what the other cases add at each ability
    spread = (p_rest * (1 - p_rest)).sum(-1)
    known = float(y.sum())
    mean = (known + float((post * expected).sum(1).mean())) / n
    picks = np.array([rng.choice(len(grid), p=row) for row in post])
    at = np.arange(draws)
    totals = known + expected[at, picks] + np.sqrt(spread[at, picks]) * rng.standard_normal(draws)
    lo, hi = np.quantile(totals / n, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    low = max(0.0, mean - interval_scale * max(mean - lo, 0.0), known / n)
    high = min(1.0, mean + interval_scale * max(hi - mean, 0.0), (known + len(rest)) / n)
    return Estimate(mean, low, min(high, 1.0), len(run), n, "calibrated")


def subset_mean(
    observed: list[float],
    cases_total: int,
    note: str = "",
    groups: list[str | None] | None = None,
    scale: tuple[float, float] | None = None,
) -> Estimate:
    """The plain mean of the cases run, with a finite-population t interval: the
    estimate a random subset gives, and the fallback when the bank cannot serve. The
    interval never leaves what the known scores allow: the cases not run all at the
    low or all at the high end of the metric's ``scale`` (chrF's 0 and 100; without
    one, 0 and 1 where every score is in [0, 1]). ``groups`` (each case's group, None:
    its own): where the cases run span two groups or more, the standard error is
    clustered by group on C − 1 df, never below the unclustered one, as the
    leaderboard's (``mean_interval``): 4 cases of one passage and 1 of another are not
    5 independent cases."""
    values = np.asarray(observed, dtype=float)
    k = len(values)
    mean = float(values.mean())
    if k >= cases_total:
        return Estimate(mean, mean, mean, k, cases_total, "full", note)
    if scale is None or not ((values >= scale[0]) & (values <= scale[1])).all():
        scale = (0.0, 1.0) if ((values >= 0) & (values <= 1)).all() else None
    low_end, high_end = scale or (-math.inf, math.inf)  # no known scale: no bounds
    floor = (float(values.sum()) + (cases_total - k) * low_end) / cases_total
    ceiling = (float(values.sum()) + (cases_total - k) * high_end) / cases_total
    if k < 2:
        low, high = (floor, ceiling) if math.isfinite(floor + ceiling) else (mean, mean)
        return Estimate(mean, low, high, k, cases_total, "subset mean", note)
    fpc = 1 - k / cases_total
    se, df = math.sqrt(values.var(ddof=1) / k), k - 1
    labels = [f"\x00case:{i}" if g is None else g for i, g in enumerate(groups or [])]
    if 1 < len(set(labels)) < k:
        sums: dict[str, float] = {}
        for label, value in zip(labels, values - mean, strict=True):
            sums[label] = sums.get(label, 0.0) + float(value)
        c = len(sums)
        clustered = math.sqrt(sum(v * v for v in sums.values()) * c / (c - 1)) / k
        se, df = max(se, clustered), c - 1
    half = t_quantile((1 + LEVEL) / 2, df) * se * math.sqrt(fpc)
    if values.var(ddof=1) == 0:  # all the same: the interval of a proportion at 0 or 1
        half = 3 / k * math.sqrt(fpc)  # the rule of three, shrunk as the rest
    low, high = max(floor, mean - half), min(ceiling, mean + half)
    return Estimate(mean, low, high, k, cases_total, "subset mean", note)


def _draw_items(
    fit: ItemFit, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(log a, b) per draw and case from each case's 2×2 Laplace covariance; draw 0 is
    the estimate itself."""
    chol = np.linalg.cholesky(fit.cov + np.eye(2) * 1e-12)  # cases × 2 × 2
    noise = rng.standard_normal((draws, len(fit.difficulty), 2))
    noise[0] = 0.0
    shift = np.einsum("cij,dcj->dci", chol, noise)
    return np.log(fit.discrimination) + shift[..., 0], fit.difficulty + shift[..., 1]


def estimate_weights(
    fit: ItemFit,
    observed: dict[int, float],
    *,
    ability_mean: float = 0.0,
    ability_sd: float = 1.0,
) -> np.ndarray:
    """How much the full-suite estimate moves per unit of each observed case's score
    (in ``observed``'s order), at the items' estimates: ``(1 + Cov(R, z_i)) / n`` under
    the ability's posterior, R the score the other cases add and ``z_i = a_i (θ − b_i)``
    the derivative of case i's log-likelihood in its score. A change of the cases'
    scores by ``d`` moves the estimate by about ``weights · d``: the series watch judges
    a calibrated night's change in these units (evaluation/series/_stream.py)."""
    from scipy.special import expit

    n = len(fit.difficulty)
    run = np.fromiter(observed, dtype=int, count=len(observed))
    y = np.fromiter(observed.values(), dtype=float, count=len(observed))
    rest = np.setdiff1d(np.arange(n), run)
    sd = max(ability_sd, 0.5)
    grid = GRID * sd + ability_mean
    z = fit.discrimination[run] * (grid[:, None] - fit.difficulty[run])  # grid × run
    loglik = (y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z)).sum(-1)
    logpost = loglik - 0.5 * ((grid - ability_mean) / sd) ** 2
    post = np.exp(logpost - logpost.max())
    post /= post.sum()
    rest_sum = expit(fit.discrimination[rest] * (grid[:, None] - fit.difficulty[rest])).sum(-1)
    centred = rest_sum - post @ rest_sum
    return (1 + (post * centred) @ (z - post @ z)) / n
