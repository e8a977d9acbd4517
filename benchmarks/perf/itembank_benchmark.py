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
    estimate_weights,
    fit_2pl,
    most_informative,
    subset_mean,
)
from evaluation.series._watch import WatchSettings, beyond_noise, cusum, mean_stream_z
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


def _shifted(p: np.ndarray, points: float) -> np.ndarray:
    """Each case's probability after a drop of ``points`` (0–1 scale) in the config's
    mean: the same shift on every case's probit scale, found by bisection."""
    if points == 0:
        return p
    z = norm.ppf(np.clip(p, 1e-6, 1 - 1e-6))
    low, high = 0.0, 6.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if p.mean() - norm.cdf(z - mid).mean() < points else (low, mid)
    return norm.cdf(z - high)


def _calibrated_inputs(
    fit, bank_mean: float, bank_sd: float, nights: np.ndarray, weighted: bool
) -> np.ndarray:
    """The watch's inputs on the calibrated cases up to tonight (configs × nights ×
    cases), as evaluation/series/_stream.py builds them: each case scaled by its weight
    in the bank's full-suite estimate at the config's level over the nights before
    tonight (``weighted``), else the cases' plain mean."""
    if not weighted:
        return nights
    reference = nights[:, :-1].mean(1) if nights.shape[1] > 1 else nights[:, 0]
    weights = np.array(
        [
            estimate_weights(fit, dict(enumerate(row)), ability_mean=bank_mean, ability_sd=bank_sd)
            for row in reference
        ]
    )
    return nights * weights[:, None, :] * nights.shape[-1]


def nightly_world(world: str, args: argparse.Namespace, rep: int) -> dict[float, dict]:
    """One repetition, per drop (0: none): a bank fitted on ``--bank`` configs (the fit
    ``evalflow bank`` stores: ``fit_2pl`` on every score; its held-out checks, which
    only widen intervals, are left out here), ``--watched`` other configs of the same
    world run every night (fresh 0/1 draws from each case's true probability), the
    first of them dropping by the drop from night ``--drop-night``. Watched three ways:
    the full suite every night (the series watch as it is), the calibrated 10% judged
    in the bank's estimate and sent to the full suite when it moved beyond noise (what
    the calibrated nightly does), and the same 10% judged on its plain mean."""
    rng = np.random.default_rng(7919 * rep + 13)
    n, configs, nights = args.cases, args.watched, args.nights
    k = math.ceil(args.share * n)
    total = args.bank + configs
    if world == "simulated":
        y, probs = simulated_world(total, n, rng, seed=rep)
    else:
        y, probs = interacting_world(total, n, rng)
    fit = fit_2pl(y[: args.bank], np.ones_like(y[: args.bank]))
    bank_mean, bank_sd = float(fit.ability.mean()), float(fit.ability.std())
    p = probs[args.bank :]
    draws = rng.random((configs, nights, n))
    subset = np.sort(rng.choice(n, k, replace=False))
    settings = WatchSettings()
    h = settings.threshold(
        4 * configs
    )  # four streams a config: quality, failures, latency, tokens/s
    found: dict[float, dict] = {}
    for drop in (0.0, *args.drops):
        truth = np.repeat(p[:, None, :], nights, axis=1)
        truth[0, args.drop_night :] = _shifted(p[0], drop)
        scores = (draws < truth).astype(float)  # configs × nights × cases
        _, _, z_full, _ = mean_stream_z(scores, higher_is_better=True, window=settings.window)
        _, alarms_full = cusum(z_full, settings.k, h)
        out = {"full": {"alarms": alarms_full, "escalated": np.ones_like(alarms_full)}}
        for name, weighted in (("calibrated", True), ("subset mean", False)):
            alarms = np.zeros((configs, nights), dtype=bool)
            escalated = np.zeros((configs, nights), dtype=bool)
            for t in range(1, nights):  # each night the watch reads the series as stored
                inputs = _calibrated_inputs(
                    fit, bank_mean, bank_sd, scores[:, : t + 1][..., subset], weighted
                )
                theta, var, z, _ = mean_stream_z(
                    inputs, higher_is_better=True, window=settings.window
                )
                path, fired = cusum(z, settings.k, h)
                with np.errstate(invalid="ignore"):
                    moved = np.isnan(z[:, t]) & (np.abs(theta[:, t]) > 1.96 * np.sqrt(var[:, t]))
                alarms[:, t] = fired[:, t]
                escalated[:, t] = beyond_noise(path[:, t], h, fired[:, t], moved)
            out[name] = {"alarms": alarms, "escalated": escalated}
        for one in out.values():
            one["k"], one["n"] = k, n
        found[drop] = out
    return found


def _nights(median: float, args: argparse.Namespace) -> str:
    return f"> {args.nights - args.drop_night}" if math.isinf(median) else f"{median:.0f}"


def nightly(args: argparse.Namespace) -> None:
    """Generations per night and nights to catch a drop, watching on the full suite
    against watching on the calibrated 10% (evaluation/series: the same weights,
    watch statistics, CUSUM and escalation rule the nightly flow uses)."""
    for world in args.worlds.split(","):
        started = time.perf_counter()
        series = [nightly_world(world, args, rep) for rep in range(args.nightly_reps)]
        seconds = time.perf_counter() - started
        for drop in (0.0, *args.drops):
            per_method: dict[str, dict[str, list]] = {}
            for by_drop in series:
                for method, found in by_drop[drop].items():
                    row = per_method.setdefault(
                        method, {"gens": [], "delay": [], "false": [], "full run": []}
                    )
                    alarms, escalated = found["alarms"], found["escalated"]
                    gens = (
                        found["n"] * alarms.size
                        if method == "full"
                        else found["k"] * alarms.size + (found["n"] - found["k"]) * escalated.sum()
                    )
                    row["gens"].append(gens / alarms.shape[1])
                    after = args.drop_night
                    caught = np.flatnonzero(alarms[0, after:])
                    ran = np.flatnonzero(escalated[0, after:])
                    if drop:
                        row["delay"].append(caught[0] + 1 if caught.size else math.inf)
                        row["full run"].append(ran[0] + 1 if ran.size else math.inf)
                    others = alarms[1:] if drop else alarms
                    row["false"].append(others.sum() / others.size * 100 * others.shape[0])
            title = "null" if not drop else f"{100 * drop:.0f}-point drop"
            print(
                f"\nnightly, world {world}, {title} (config 1 of {args.watched} from night "
                f"{args.drop_night + 1} of {args.nights}; {args.nightly_reps} series)"
                if drop
                else f"\nnightly, world {world}, null ({args.watched} configs, {args.nights} "
                f"nights, {args.nightly_reps} series; {seconds:.0f} s for every row of the world)"
            )
            print(
                f"{'watched on':<12} {'gens/night':>10} {'saved':>6} "
                f"{'false alarms/100 nights':>24}"
                + (
                    "  alarm within 1 / 3 / 10 nights, median;  first full run of it, median"
                    if drop
                    else ""
                )
            )
            full_gens = np.mean(per_method["full"]["gens"])
            for method, row in per_method.items():
                gens = float(np.mean(row["gens"]))
                line = (
                    f"{method:<12} {gens:>10.0f} {1 - gens / full_gens:>6.0%} "
                    f"{np.mean(row['false']):>24.2f}"
                )
                if drop:
                    delay = np.array(row["delay"])
                    shares = " / ".join(f"{np.mean(delay <= d):.0%}" for d in (1, 3, 10))
                    median = np.median(delay)
                    line += f"  {shares}, {_nights(median, args)}"
                    if method != "full":
                        line += f";  {_nights(np.median(row['full run']), args)}"
                print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--bank", type=int, default=30, help="configs calibrated on")
    parser.add_argument("--held", type=int, default=20, help="configs held out")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--worlds", default="simulated,interacting")
    parser.add_argument("--nights", type=int, default=30, help="the nightly series' length")
    parser.add_argument("--watched", type=int, default=10, help="configs a nightly series runs")
    parser.add_argument("--drop-night", type=int, default=15, help="the night the drop starts")
    parser.add_argument(
        "--drops", type=float, nargs="*", default=[0.05, 0.10], help="drops to catch (0-1 scale)"
    )
    parser.add_argument("--nightly-reps", type=int, default=10, help="nightly series per row")
    parser.add_argument(
        "--share", type=float, default=0.1, help="the calibrated level's share of the suite"
    )
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
