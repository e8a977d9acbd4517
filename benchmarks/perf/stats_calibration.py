"""Are evalflow's tests calibrated? Repeated simulated experiments with known truth.

True qualities come from the simulated backend's ground truth
(``evaluation.backends.simulated.true_profile``, QA task). Per-case 0/1 scores follow the
same Gaussian copula as ``SimulatedBackend``: a case's own difficulty, shared by every
config, plus a per-draw part (correct when the latent is below Φ⁻¹(quality)), so scores
are correlated between configs as real paired data are. Continuous scores are
quality + a case effect + noise.

Checks (α = 0.05):
1. A/B with true difference 0 (sim-large at temperature 0.0 vs 0.3: both 0.80):
   false-positive rate in [0.03, 0.07], for exact McNemar (0/1) and paired t (continuous).
2. Six configs with the same true quality, all pairs, Holm: family-wise false-positive
   rate ≤ 0.05 (and how often a false winner is declared).
3. True difference δ (temperature 0.0 vs 0.7): observed power within 10 points of the
   formula's prediction at the n the formula says gives 80% power.

    .venv/bin/python benchmarks/perf/stats_calibration.py [--experiments 500]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import sys
import time
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy import stats

from evaluation.backends.simulated import true_profile
from evaluation.spec import GenerationParams
from evaluation.statistics import (
    cases_needed,
    compare_many,
    compare_scores,
    predicted_power,
)

ALPHA = 0.05
MODEL = "sim-large:8b"
CASE_SHARE = 0.5  # share of the latent that is the case's difficulty (as SimulatedBackend)
CONT_CASE_SD, CONT_NOISE_SD = 0.15, 0.10  # continuous metric: case effect and noise


def quality(temperature: float, template: str = "default") -> float:
    return true_profile(MODEL, GenerationParams(temperature=temperature), template, "qa").quality


def binary_scores(qualities: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """configs × cases 0/1 scores from the Gaussian copula."""
    case = rng.standard_normal(n)
    draw = rng.standard_normal((len(qualities), n))
    latent = math.sqrt(CASE_SHARE) * case + math.sqrt(1 - CASE_SHARE) * draw
    cut = np.array([NormalDist().inv_cdf(q) for q in qualities])[:, None]
    return (latent < cut).astype(float)


def continuous_scores(means: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    case = CONT_CASE_SD * rng.standard_normal(n)
    return np.array(means)[:, None] + case + CONT_NOISE_SD * rng.standard_normal((len(means), n))


def binary_var_diff(qa: float, qb: float) -> float:
    """Var(Y_A − Y_B) under the copula: qA + qB − 2·P(both correct) − δ²."""
    za, zb = NormalDist().inv_cdf(qa), NormalDist().inv_cdf(qb)
    both = stats.multivariate_normal(cov=[[1, CASE_SHARE], [CASE_SHARE, 1]]).cdf([za, zb])
    return qa + qb - 2 * both - (qa - qb) ** 2


def rejection_rate(p_values: list[float]) -> float:
    return float(np.mean(np.array(p_values) < ALPHA))


def null_ab(experiments: int, n: int, seed: int) -> tuple[float, float, float]:
    qa, qb = quality(0.0), quality(0.3)
    assert qa == qb, "temperatures ≤ 0.3 should have the same true quality"
    rng = np.random.default_rng(seed)
    mcnemar_p, t_p = [], []
    for _ in range(experiments):
        a, b = binary_scores([qa, qb], n, rng)
        mcnemar_p.append(compare_scores(a, b, score_type="binary").p_value)
        a, b = continuous_scores([qa, qb], n, rng)
        t_p.append(compare_scores(a, b, score_type="continuous").p_value)
    return qa, rejection_rate(mcnemar_p), rejection_rate(t_p)


def family_wise(experiments: int, n: int, seed: int) -> tuple[list[str], float, float]:
    grid = list(itertools.product((0.0, 0.15, 0.3), ("default", "plain")))
    names = [f"t={t} tpl={tpl}" for t, tpl in grid]
    qualities = [quality(t, tpl) for t, tpl in grid]
    assert len(set(qualities)) == 1, f"six configs should share one true quality: {qualities}"
    rng = np.random.default_rng(seed)
    case_ids = [f"c{i}" for i in range(n)]
    any_significant = false_winner = 0
    for _ in range(experiments):
        scores = binary_scores(qualities, n, rng)
        rows = pd.DataFrame(
            {
                "config": np.repeat(names, n),
                "case_id": case_ids * len(names),
                "sample_index": 0,
                "group": None,
                "metric": "accuracy",
                "value": scores.ravel(),
            }
        )
        multi = compare_many(rows, "accuracy", score_type="binary", adjust="holm", alpha=ALPHA)
        any_significant += any(ac.significant for ac in multi.comparisons)
        false_winner += multi.winner is not None
    return names, any_significant / experiments, false_winner / experiments


def power_check(experiments: int, seed: int) -> dict[str, float]:
    qa, qb = quality(0.0), quality(0.7)
    delta = qa - qb
    var_bin = binary_var_diff(qa, qb)
    n_bin = cases_needed(var_bin, delta, alpha=ALPHA, power=0.80)
    cont_delta = 0.02
    var_cont = 2 * CONT_NOISE_SD**2
    n_cont = cases_needed(var_cont, cont_delta, alpha=ALPHA, power=0.80)
    rng = np.random.default_rng(seed)
    bin_hits = cont_hits = 0
    for _ in range(experiments):
        a, b = binary_scores([qa, qb], n_bin, rng)
        res = compare_scores(a, b, score_type="binary")
        bin_hits += res.p_value < ALPHA and res.diff > 0
        a, b = continuous_scores([qb + cont_delta, qb], n_cont, rng)
        res = compare_scores(a, b, score_type="continuous")
        cont_hits += res.p_value < ALPHA and res.diff > 0
    return {
        "delta": delta,
        "var_bin": var_bin,
        "n_bin": n_bin,
        "pred_bin": predicted_power(var_bin, n_bin, delta, alpha=ALPHA),
        "obs_bin": bin_hits / experiments,
        "cont_delta": cont_delta,
        "var_cont": var_cont,
        "n_cont": n_cont,
        "pred_cont": predicted_power(var_cont, n_cont, cont_delta, alpha=ALPHA),
        "obs_cont": cont_hits / experiments,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--cases", type=int, default=300, help="cases per null experiment")
    parser.add_argument("--seed", type=int, default=20241101)
    args = parser.parse_args()
    k, n = args.experiments, args.cases
    # statsmodels' Holm step calls gc.collect(); freezing the imported modules' objects
    # makes that cheap (it dominated the run time otherwise).
    gc.freeze()
    start = time.perf_counter()
    failures = []

    def check(label: str, ok: bool) -> str:
        if not ok:
            failures.append(label)
        return "ok" if ok else "FAIL"

    q, fp_mcnemar, fp_t = null_ab(k, n, args.seed)
    print(
        f"1. A/B, true difference 0 ({MODEL} t=0.0 vs t=0.3, both quality {q:.2f}), "
        f"{k} experiments × {n} cases"
    )
    print(
        f"   exact McNemar (0/1):   false-positive rate {fp_mcnemar:.3f}  "
        f"[target 0.03–0.07] {check('FP McNemar', 0.03 <= fp_mcnemar <= 0.07)}"
    )
    print(
        f"   paired t (continuous): false-positive rate {fp_t:.3f}  "
        f"[target 0.03–0.07] {check('FP t', 0.03 <= fp_t <= 0.07)}"
    )

    names, fwer, winners = family_wise(k, n, args.seed + 1)
    print(
        f"2. {len(names)} configs, equal true quality, all {len(names) * 5 // 2} pairs, Holm, "
        f"{k} experiments × {n} cases"
    )
    print(
        f"   family-wise false-positive rate {fwer:.3f}  [target ≤ 0.05] "
        f"{check('FWER', fwer <= 0.05)}"
    )
    print(f"   false winner declared in {winners:.3f} of experiments")

    p = power_check(k, args.seed + 2)
    print(f"3. Power at the n the formula gives for 80% (α = {ALPHA}), {k} experiments")
    print(
        f"   0/1, δ = {p['delta']:.4f} (t=0.0 vs t=0.7), Var(d) = {p['var_bin']:.4f}, "
        f"n = {p['n_bin']}: predicted {p['pred_bin']:.3f}, observed {p['obs_bin']:.3f}  "
        f"{check('power 0/1', abs(p['obs_bin'] - p['pred_bin']) <= 0.10)}"
    )
    print(
        f"   continuous, δ = {p['cont_delta']}, Var(d) = {p['var_cont']:.4f}, "
        f"n = {p['n_cont']}: predicted {p['pred_cont']:.3f}, observed {p['obs_cont']:.3f}  "
        f"{check('power continuous', abs(p['obs_cont'] - p['pred_cont']) <= 0.10)}"
    )
    print(
        f"took {time.perf_counter() - start:.1f} s; "
        + ("all checks pass" if not failures else f"FAILED: {', '.join(failures)}")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
