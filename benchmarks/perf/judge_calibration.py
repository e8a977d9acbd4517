"""Do the combined estimates cover the people's truth? A judge with a known bias, people
with rater noise, repeated experiments.

World (stars 1–5, reported on the unit scale (stars − 1)/4 as evalflow stores them):
- an output's latent quality q ~ N(3, 0.9²) and its length (words) L ~ LogNormal(4.5, 0.5),
  independent of quality;
- people: round(q + N(0, 0.6²)) clipped to 1–5 (rater noise); the people's truth is the
  mean of their stars over outputs, E[y], computed once on 2,000,000 draws;
- the judge: round(0.8·q + 1.2 + 0.8·z(L) + N(0, 0.7²)) clipped to 1–5: a shifted,
  compressed scale (about half a star above people on average), a preference for long
  outputs (z(L): the standardised log length) and its own noise.

Per experiment: N outputs the judge scores, n of them (a uniform random draw) rated by
people. Three 95% intervals, each evaluation.calibration.ppi_mean's default (divisor
n − 1, Student's t) or with --normal the normal interval as ppi_py computes it: judge
only (all N judge scores), people only (the n ratings) and combined (PPI++). Reported:
coverage of the people's truth over the repetitions (target 95% ± 2 for combined; judge
only under 50%) and the mean width of combined against people only at 30, 100 and 300
ratings. A second world clusters outputs in groups of 5 that share part of their
quality (the suite's case groups) and checks the cluster-robust interval.

    .venv/bin/python benchmarks/perf/judge_calibration.py [--reps 2000] [--outputs 2000]
        [--ratings 30 100 300] [--normal] [--length 0.8] [--noise 0.7] [--clusters 1 5]

``--few 2 3 4 5 6 8 10`` instead: the people-only t interval on that few ratings (where
``evaluation.calibration._shown.MIN_INTERVAL`` comes from), ``--reps`` draws of each
(vectorised; 200,000 in about 2 s of CPU): how often it is a point (every rating the
same), wider than the whole unit scale, and its coverage, all and of the non-points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluation.calibration import ppi_mean


def draw(
    rng: np.random.Generator, size: int, cluster: int = 1, length: float = 0.8, noise: float = 0.7
) -> tuple[np.ndarray, ...]:
    """People's and the judge's stars (unit scale) and group labels for ``size`` outputs;
    ``cluster`` > 1: groups of that many outputs share a quality effect (sd 0.6)."""
    groups = np.arange(size) // cluster
    shared = rng.normal(0, 0.6, size // cluster + 1)[groups] if cluster > 1 else 0.0
    q = rng.normal(3.0, 0.9 if cluster == 1 else 0.66, size) + shared
    z_len = rng.normal(0, 1, size)  # standardised log length, independent of quality
    people = np.clip(np.rint(q + rng.normal(0, 0.6, size)), 1, 5)
    judge = np.clip(np.rint(0.8 * q + 1.2 + length * z_len + rng.normal(0, noise, size)), 1, 5)
    return (people - 1) / 4, (judge - 1) / 4, groups


def truth(cluster: int, length: float, noise: float, seed: int = 12345) -> tuple[float, float]:
    people, judge, _ = draw(np.random.default_rng(seed), 2_000_000, cluster, length, noise)
    return float(people.mean()), float(judge.mean())


def experiment(rng, n_outputs: int, n_rated: int, cluster: int, small: bool, world: tuple):
    people, judge, groups = draw(rng, n_outputs, cluster, *world)
    rated = np.zeros(n_outputs, dtype=bool)
    rated[rng.choice(n_outputs, n_rated, replace=False)] = True
    g = groups if cluster > 1 else None

    def grp(mask):
        return None if g is None else g[mask]

    every = np.ones(n_outputs, dtype=bool)
    judge_only = ppi_mean(
        judge, np.zeros(n_outputs), [], lam=0, groups_rated=grp(every), small_sample=small
    )
    people_only = ppi_mean(
        people[rated], np.zeros(n_rated), [], lam=0, groups_rated=grp(rated), small_sample=small
    )
    combined = ppi_mean(
        people[rated],
        judge[rated],
        judge[~rated],
        groups_rated=grp(rated),
        groups_unrated=grp(~rated),
        small_sample=small,
    )
    return judge_only, people_only, combined


def few(sizes: list[int], reps: int, seed: int, world: tuple) -> None:
    """The people-only t interval (divisor n − 1, Student's t, as ppi_mean's default) on
    ``sizes`` ratings, ``reps`` draws each."""
    from scipy import special

    start = time.process_time()
    mu, _ = truth(1, *world)
    rng = np.random.default_rng(seed)
    print(f"people's truth {mu:.4f}; {reps} draws of each n; 95% t intervals, unit scale")
    head = {"n": 3, "a point": 7, "wider than [0, 1]": 17, "cover": 5, "cover, no point": 15}
    print("  ".join(f"{name:>{width}}" for name, width in head.items()))
    for n in sizes:
        y = draw(rng, reps * n, 1, *world)[0].reshape(reps, n)
        mean, se = y.mean(1), y.std(1, ddof=1) / np.sqrt(n)
        q = float(special.stdtrit(n - 1, 0.975))
        low, high = mean - q * se, mean + q * se
        cover, point = (low <= mu) & (mu <= high), se == 0
        print(
            f"{n:>3}  {point.mean():>7.3f}  {((high - low) > 1).mean():>17.3f}  "
            f"{cover.mean():>5.3f}  {cover[~point].mean():>15.3f}"
        )
    print(f"\n{time.process_time() - start:.1f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--outputs", type=int, default=2000)
    parser.add_argument("--ratings", type=int, nargs="+", default=[30, 100, 300])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normal", action="store_true", help="ppi_py's normal intervals")
    parser.add_argument("--length", type=float, default=0.8, help="the judge's length preference")
    parser.add_argument("--noise", type=float, default=0.7, help="the judge's own noise (stars)")
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--few", type=int, nargs="+", help="ratings of a small-n table")
    args = parser.parse_args()
    if args.few:
        few(args.few, args.reps, args.seed, (args.length, args.noise))
        return
    start = time.perf_counter()
    print(
        f"{args.reps} experiments per cell, {args.outputs} judged outputs each; "
        f"95% {'normal' if args.normal else 'small-sample (t)'} intervals; unit scale"
    )
    world = (args.length, args.noise)
    print(f"the judge: length preference {args.length} stars per sd, noise sd {args.noise}")
    for cluster in args.clusters:
        title = "independent outputs" if cluster == 1 else f"outputs in groups of {cluster}"
        mu, judge_mean = truth(cluster, *world)
        print(
            f"\n{title}: people's truth {mu:.4f}, the judge's mean {judge_mean:.4f} "
            f"(bias {judge_mean - mu:+.4f})"
        )
        print(
            f"{'ratings':>7}  {'cover: judge only':>17}  {'people only':>11}  {'combined':>8}"
            f"  {'width: people only':>18}  {'combined':>8}  {'ratio':>5}  {'mean λ':>6}"
        )
        rng = np.random.default_rng(args.seed + cluster)
        for n in args.ratings:
            cover = np.zeros(3)
            width = np.zeros(3)
            lam = 0.0
            for _ in range(args.reps):
                ests = experiment(rng, args.outputs, n, cluster, not args.normal, world)
                for k, est in enumerate(ests):
                    lo, hi = est.ci
                    cover[k] += lo <= mu <= hi
                    width[k] += hi - lo
                lam += ests[2].lam
            cover /= args.reps
            width /= args.reps
            print(
                f"{n:>7}  {cover[0]:>17.3f}  {cover[1]:>11.3f}  {cover[2]:>8.3f}"
                f"  {width[1]:>18.4f}  {width[2]:>8.4f}  {width[2] / width[1]:>5.2f}"
                f"  {lam / args.reps:>6.2f}"
            )
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
