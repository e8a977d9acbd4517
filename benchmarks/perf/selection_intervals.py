"""Do the selection-corrected quality intervals cover the truth, for every candidate and
for the one picked as best? (selection/_selection_bias.py)

Task types of N candidates with true qualities drawn from one of six shapes (normal, two
lumps, uniform, a few far above the rest, a ceiling near 1, all equal), each measured on
5–15 cases (70%) or 50–300 cases (30%), so their estimates are q + N(0, s²) with
s = sqrt(0.24 / cases). Per shape and N, over REPS task types: the share of 90% intervals
(± 1.645 sd, as `recommend` gives them) that hold the truth, over all candidates and for
the candidate with the highest corrected estimate (the pick), and the pick's mean width;
under Ĝ alone (the posterior as if the estimated G were the true one) and as
`deconvolve` gives it (that posterior widened by G's own estimation error).

Usage: selection_intervals.py [--reps 60] [--sizes 22 60 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from selection._selection_bias import EM_ITERATIONS, GRID_ATOMS, _npmle, _posterior, deconvolve

Z = 1.645
SHAPES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "normal": lambda rng, n: rng.normal(0.6, 0.1, n),
    "two lumps": lambda rng, n: np.where(
        rng.random(n) < 0.8, rng.normal(0.6, 0.02, n), rng.normal(0.3, 0.02, n)
    ),
    "uniform": lambda rng, n: rng.uniform(0.2, 0.9, n),
    "few far above": lambda rng, n: np.where(
        rng.random(n) < 0.95, rng.normal(0.5, 0.05, n), rng.normal(0.75, 0.03, n)
    ),
    "ceiling": lambda rng, n: 1 - rng.gamma(1.0, 0.04, n),
    "all equal": lambda rng, n: np.full(n, 0.55),
}


def g_hat_alone(estimate: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The posterior under Ĝ only, as `deconvolve` gave it before the refits."""
    atoms = np.linspace(estimate.min(), estimate.max(), GRID_ATOMS)
    log_lik = -0.5 * ((estimate[:, None] - atoms[None, :]) / sd[:, None]) ** 2
    lik = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    mean, variance = _posterior(lik, _npmle(lik, EM_ITERATIONS), atoms)
    return mean, np.sqrt(variance)


def with_refits(estimate: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found = deconvolve(estimate, sd)
    return found.mean, found.sd


def coverage(method, shape: str, n: int, reps: int) -> tuple[float, float, float]:
    """All candidates' coverage, the pick's coverage, the pick's mean interval width."""
    every, picked, width = [], [], []
    for rep in range(reps):
        rng = np.random.default_rng(1000 * n + rep)
        truth = np.clip(SHAPES[shape](rng, n), 0, 1)
        cases = np.where(rng.random(n) < 0.7, rng.integers(5, 16, n), rng.integers(50, 300, n))
        sd = np.sqrt(0.24 / cases)
        mean, post_sd = method(truth + rng.normal(size=n) * sd, sd)
        inside = np.abs(mean - truth) <= Z * post_sd
        pick = int(np.argmax(mean))
        every.append(inside.mean())
        picked.append(inside[pick])
        width.append(2 * Z * post_sd[pick])
    return float(np.mean(every)), float(np.mean(picked)), float(np.mean(width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="+", default=[22, 60, 200])
    args = parser.parse_args()
    started = time.perf_counter()
    print("coverage of 90% intervals: all candidates / the pick (pick's mean width)")
    print(f"{'shape':14s} {'N':>4s}  {'under Ĝ alone':>26s}  {'with G refits':>26s}")
    for shape in SHAPES:
        for n in args.sizes:
            cells = [coverage(m, shape, n, args.reps) for m in (g_hat_alone, with_refits)]
            text = [f"{a:.3f} / {p:.3f} ({w:.3f})" for a, p, w in cells]
            print(f"{shape:14s} {n:4d}  {text[0]:>26s}  {text[1]:>26s}")
    print(f"{time.perf_counter() - started:.0f} s, {args.reps} task types per cell")


if __name__ == "__main__":
    main()
