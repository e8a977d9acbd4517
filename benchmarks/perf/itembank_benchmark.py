"""Calibrated subsets, measured: configs held out of an item bank's calibration are
estimated from k = 5%, 10%, 20% of a 300-case suite and held against their full-suite
score, beside a random subset of the same size (its plain mean with a finite-population
t interval). Mean absolute error in points and 95% interval coverage.

Worlds (0/1 scores, one per config and case):

- ``simulated``: the simulated backend's own data model (docs/simulated-backend.md):
  ``true_quality`` of each config (model × temperature × template, task qa), and a case
  correct when ``√0.5·z_case + √0.5·e < Φ⁻¹(quality)`` with the backend's per-case
  difficulty draw (``_seeded(seed, "difficulty", "suite/case")``); models are the
  table's four and others named as real ones (sizes from the name, quality interpolated);
- ``interacting``: a case's difficulty depends on the model family and the template,
  as in real suites: ``z = z_case + 0.6·f_case,family + 0.4·t_case,template`` (fresh
  normal draws per case and family / template, normalised), qualities by family, size,
  template and temperature; a case's truth differs between a llama and a qwen.

Each repetition draws a fresh world, calibrates a bank (``calibrate``: the same code
``evalflow bank`` runs, held-out checks and interval widening included) from ``--bank``
configs that ran the whole suite, and estimates ``--held`` other configs of the same
families. The bundled repository holds no real models' stored outputs (the real-model
rig generates them in tests and keeps none), so there is no real-model check here.

Beside them, the floor no method can pass: ``oracle`` knows every score's true
probability and adds the other cases' expectation to the cases run; its error is the
Bernoulli noise of the cases not run alone.

Also printed (``nightly``): a 30-night series watched on the calibrated 10%, the full
suite run only when the last full score falls outside the night's estimate interval:
generations per night, and the nights before a 5-point drop is caught by a full run.

Run: ``python benchmarks/perf/itembank_benchmark.py`` (numpy and scipy only; figures and
timings in docs/calibrated-subsets.md); ``--reps``, ``--bank``, ``--held``, ``--cases``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluation.backends._simulated_truth import DIFFICULTY_CORRELATION, true_quality
from evaluation.backends.simulated import _seeded
from evaluation.itembank import (
    calibrate,
    calibrated_estimate,
    most_informative,
    subset_mean,
)
from evaluation.spec import GenerationParams

SHARES = (0.05, 0.10, 0.20)
SIM_MODELS = (
    "sim-small:1b",
    "sim-medium:3b",
    "sim-large:8b",
    "sim-xl:14b",
    "llama3.2:1b",
    "llama3.2:3b",
    "llama3.1:8b",
    "qwen2.5:0.5b",
    "qwen2.5:7b",
    "qwen2.5:14b",
    "gemma2:2b",
    "gemma2:9b",
    "mistral:7b",
    "phi3:3.8b",
)
TEMPLATES = ("plain", "concise", "cot", "few_shot")
TEMPERATURES = (0.0, 0.7, 1.0)


def simulated_world(
    n_configs: int, n_cases: int, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``n_configs`` random configs of the simulated backend's world, and each
    score's true probability."""
    z = np.array(
        [
            np.random.default_rng(_seeded(seed, "difficulty", f"bench/c{i}")).standard_normal()
            for i in range(n_cases)
        ]
    )
    rho = DIFFICULTY_CORRELATION
    rows, probs = [], []
    for _ in range(n_configs):
        model = SIM_MODELS[rng.integers(len(SIM_MODELS))]
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        temperature = TEMPERATURES[rng.integers(len(TEMPERATURES))]
        q = true_quality(model, GenerationParams(temperature=temperature), template, "qa")
        q = min(max(q, 0.02), 0.98)
        e = rng.standard_normal(n_cases)
        rows.append(math.sqrt(rho) * z + math.sqrt(1 - rho) * e < norm.ppf(q))
        probs.append(norm.cdf((norm.ppf(q) - math.sqrt(rho) * z) / math.sqrt(1 - rho)))
    return np.array(rows, dtype=float), np.array(probs)


FAMILIES = ("llama", "qwen", "gemma", "mistral", "phi")


def interacting_world(
    n_configs: int, n_cases: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scores where a case's difficulty depends on the model family and the template,
    and each score's true probability."""
    z = rng.standard_normal(n_cases)
    by_family = rng.standard_normal((len(FAMILIES), n_cases))
    by_template = rng.standard_normal((len(TEMPLATES), n_cases))
    family_level = rng.normal(0, 0.4, len(FAMILIES))
    template_level = rng.normal(0, 0.15, len(TEMPLATES))
    scale = math.sqrt(1 + 0.6**2 + 0.4**2)
    rows, probs = [], []
    for _ in range(n_configs):
        f, t = rng.integers(len(FAMILIES)), rng.integers(len(TEMPLATES))
        size = rng.uniform(-1, 1)
        temperature = TEMPERATURES[rng.integers(len(TEMPERATURES))]
        ability = family_level[f] + 0.8 * size + template_level[t] - 0.3 * temperature**2
        difficulty = (z + 0.6 * by_family[f] + 0.4 * by_template[t]) / scale
        latent = math.sqrt(0.5) * difficulty + math.sqrt(0.5) * rng.standard_normal(n_cases)
        rows.append(latent < ability)
        probs.append(norm.cdf((ability - math.sqrt(0.5) * difficulty) / math.sqrt(0.5)))
    return np.array(rows, dtype=float), np.array(probs)


def run_world(name: str, args: argparse.Namespace) -> dict:
    """Errors and coverage per share and method over the repetitions of a world."""
    found: dict[tuple[float, str], list[tuple[float, bool, float]]] = {}
    scales, started = [], time.perf_counter()
    for rep in range(args.reps):
        rng = np.random.default_rng(1000 * rep + 7)
        n = args.bank + args.held
        y, truth_p = (
            simulated_world(n, args.cases, rng, seed=rep)
            if name == "simulated"
            else interacting_world(n, args.cases, rng)
        )
        bank, held = y[: args.bank], y[args.bank :]
        held_p = truth_p[args.bank :]
        done = calibrate(bank, np.ones_like(bank))
        scales.append(done.interval_scale)
        fit = done.fit
        for share in SHARES:
            k = math.ceil(share * args.cases)
            informative = most_informative(fit, k)
            for j, row in enumerate(held):
                truth = float(row.mean())
                pick = sorted(int(i) for i in rng.choice(args.cases, k, replace=False))
                for method, chosen in (("calibrated", pick), ("informative", informative)):
                    got = calibrated_estimate(
                        fit,
                        {i: float(row[i]) for i in chosen},
                        ability_mean=float(fit.ability.mean()),
                        ability_sd=float(fit.ability.std()) or 1.0,
                        interval_scale=done.interval_scale,
                        seed=j,
                    )
                    found.setdefault((share, method), []).append(
                        (abs(got.mean - truth), got.low <= truth <= got.high, got.high - got.low)
                    )
                rest = np.setdiff1d(np.arange(args.cases), pick)
                oracle = (row[pick].sum() + held_p[j, rest].sum()) / args.cases
                found.setdefault((share, "oracle"), []).append(
                    (abs(oracle - truth), True, float("nan"))
                )
                plain = subset_mean(list(row[pick]), args.cases)
                found.setdefault((share, "random mean"), []).append(
                    (
                        abs(plain.mean - truth),
                        plain.low <= truth <= plain.high,
                        plain.high - plain.low,
                    )
                )
    return {
        "rows": found,
        "scale": float(np.mean(scales)),
        "seconds": time.perf_counter() - started,
    }


def nightly(args: argparse.Namespace) -> None:
    """A nightly series watched on the calibrated 10% (simulated world): each night every
    held-out config runs the same seeded 10% of the cases (fresh draws, the cases' own
    difficulty fixed); the full suite runs only when the last full score falls outside
    the night's estimate interval. Scenarios: nothing changes (null), or the config's
    quality drops 5 points from night 20 (drop). Generations per config per night, and
    nights from the drop to the first full run that shows it."""
    rng = np.random.default_rng(11)
    n, k, nights, start = args.cases, math.ceil(0.1 * args.cases), args.nights, 20
    z = rng.standard_normal(n)
    quality = rng.uniform(0.35, 0.9, args.bank + args.held)
    bank_y = (
        math.sqrt(0.5) * z + math.sqrt(0.5) * rng.standard_normal((args.bank, n))
        < norm.ppf(quality[: args.bank])[:, None]
    ).astype(float)
    done = calibrate(bank_y, np.ones_like(bank_y))
    fit = done.fit
    cases = sorted(int(i) for i in rng.choice(n, k, replace=False))
    for scenario in ("null", "drop"):
        used, delays, misses = [], [], 0
        for q in quality[args.bank :]:

            def night(t: int, q: float = q, drop: bool = scenario == "drop") -> np.ndarray:
                shift = 0.05 if drop and t >= start else 0.0
                e = rng.standard_normal(n)
                return (math.sqrt(0.5) * z + math.sqrt(0.5) * e < norm.ppf(q - shift)).astype(float)

            last_full, spent, caught = night(0).mean(), n, None
            for t in range(1, nights):
                row = night(t)
                got = calibrated_estimate(
                    fit,
                    {i: float(row[i]) for i in cases},
                    ability_mean=float(fit.ability.mean()),
                    ability_sd=float(fit.ability.std()) or 1.0,
                    interval_scale=done.interval_scale,
                    draws=60,
                    seed=t,
                )
                spent += k
                if not got.low <= last_full <= got.high:
                    spent += n - k
                    last_full = row.mean()
                    if t >= start and caught is None:
                        caught = t - start
            used.append(spent / nights)
            if scenario == "drop":
                if caught is None:
                    misses += 1
                else:
                    delays.append(caught)
        line = (
            f"nightly {scenario:<4}: {np.mean(used):.0f} generations per config per night "
            f"(full suite every night: {n}; {1 - np.mean(used) / n:.0%} saved)"
        )
        if scenario == "drop":
            line += (
                f"; 5-point drop caught by a full run after a median "
                f"{np.median(delays) if delays else float('nan'):.0f} nights, missed in "
                f"{misses} of {args.held} configs within {nights - start} nights"
            )
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--bank", type=int, default=30, help="configs calibrated on")
    parser.add_argument("--held", type=int, default=20, help="configs held out")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--worlds", default="simulated,interacting")
    parser.add_argument("--nights", type=int, default=30, help="the nightly series' length")
    parser.add_argument("--only-nightly", action="store_true", help="the nightly series only")
    args = parser.parse_args()
    runs = (
        f"{args.nights} nights"
        if args.only_nightly
        else f"{args.reps} repetitions ({args.reps * args.held} estimates per row)"
    )
    print(f"{args.cases} cases, bank of {args.bank} configs, {args.held} held out, {runs}")
    for world in [] if args.only_nightly else args.worlds.split(","):
        out = run_world(world, args)
        print(
            f"\nworld {world} (mean interval widening {out['scale']:.2f}; {out['seconds']:.0f} s)"
        )
        print(
            f"{'share':>6} {'cases':>5} {'method':<12} {'MAE pts':>8} {'coverage':>9} {'width':>7}"
        )
        for (share, method), values in sorted(out["rows"].items()):
            err, cov, width = (np.array(v, dtype=float) for v in zip(*values, strict=True))
            k = math.ceil(share * args.cases)
            shown = (
                f"{'-':>9} {'-':>7}"
                if method == "oracle"
                else f"{100 * cov.mean():>8.1f}% {width.mean():>7.3f}"
            )
            print(f"{share:>6.0%} {k:>5} {method:<12} {100 * err.mean():>8.2f} {shown}")
    nightly(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
