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
3. Power of the test actually run: at the minimum detectable difference evalflow states
   for 80% power (exact McNemar on independent 0/1 cases, paired t on n − 1 df, clustered
   paired t on C − 1 df for 9 and 30 clusters, 0/1 and continuous), the observed power is
   within 5 points of 80%. Beside it, the power at the old z / unclustered MDE.
4. Cases (clusters) needed for a δ: observed power within 5 points of 80% there.
5. Intervals of bounded scores that are not 0/1 (a recall near 1, a ROUGE near 0, pass@1
   over 3 samples, 1–5 stars, a share at mid-scale) and of quantities that are never below
   0 (skewed: log-normal, counts with many zeros, exponential; as output_length, latency_s):
   evalflow's interval on the metric's scale (logit; log for >= 0) never leaves it, and
   covers the true mean in ≥ 0.90 of experiments at every n and in 0.93–0.97 at n ≥ 30;
   beside it, the plain t interval's coverage and how often it left the scale. A world too
   heavy-tailed for any interval from the sample's SE (log-normal with σ = 1: a sample
   that misses the tail has too small an SE too) is checked for covering at least as
   often as the t interval, and never leaving the scale.

    .venv/bin/python benchmarks/perf/stats_calibration.py [--experiments 500]
        [--power-experiments 1000] [--coverage-experiments 2000] [--checks 1,2,3,4,5]
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
from evaluation.statistics import compare_many, compare_scores, mean_interval, power_for_test
from evaluation.statistics.power import z_sum

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


DESIGNS = (  # (name, score kind, clusters, cases per cluster); clusters 0: no clustering
    ("0/1, 300 independent cases", "binary", 0, 300),
    ("0/1, 9 clusters × 20 cases", "binary", 9, 20),
    ("0/1, 30 clusters × 10 cases", "binary", 30, 10),
    ("continuous, 20 independent cases", "continuous", 0, 20),
    ("continuous, 9 clusters × 20 cases", "continuous", 9, 20),
    ("continuous, 30 clusters × 10 cases", "continuous", 30, 10),
)
BASE_Q = 0.70  # B's true accuracy in the 0/1 power designs
# Clustered 0/1 latent: cluster (shared), case (shared), config × cluster, per-draw parts.
CL_SHARES = (0.15, 0.35, 0.10)
CONT_TOPIC_SD = 0.05  # continuous: config × cluster effect (each config), beside the noise


def clustered_binary(q: list[float], clusters: int, per: int, rng) -> tuple[np.ndarray, ...]:
    """configs × cases 0/1 scores with cluster, case, config × cluster and draw parts."""
    a, b, e = CL_SHARES
    n = clusters * per
    g = np.repeat(np.arange(clusters), per)
    shared = math.sqrt(a) * rng.standard_normal(clusters)[g] + math.sqrt(b) * rng.standard_normal(n)
    own = math.sqrt(e) * rng.standard_normal((len(q), clusters))[:, g]
    latent = shared + own + math.sqrt(1 - a - b - e) * rng.standard_normal((len(q), n))
    cut = np.array([NormalDist().inv_cdf(x) for x in q])[:, None]
    return (latent < cut).astype(float), g


def clustered_continuous(means: list[float], clusters: int, per: int, rng):
    n = clusters * per
    g = np.repeat(np.arange(clusters), per)
    scores = continuous_scores(means, n, rng)
    return scores + CONT_TOPIC_SD * rng.standard_normal((len(means), clusters))[:, g], g


def _truth(kind: str, clusters: int, per: int, delta: float) -> dict:
    """The true SD of the differences (per case, per cluster mean) and discordant share
    of a design at true difference ``delta``: analytic, or from 40 000 simulated
    clusters (common random numbers) for clustered 0/1 scores."""
    if kind == "continuous":
        var_case = 2 * CONT_NOISE_SD**2 + (2 * CONT_TOPIC_SD**2 if clusters else 0.0)
        var_mean = 2 * CONT_TOPIC_SD**2 + 2 * CONT_NOISE_SD**2 / per
        return {"sd": math.sqrt(var_case), "sd_cluster": math.sqrt(var_mean), "psi": None}
    qa, qb = BASE_Q + delta, BASE_Q
    if not clusters:
        var = binary_var_diff(qa, qb)
        return {"sd": math.sqrt(var), "sd_cluster": None, "psi": var + delta**2}
    scores, _ = clustered_binary([qa, qb], 40_000, per, np.random.default_rng(7))
    d = (scores[0] - scores[1]).reshape(40_000, per)
    return {
        "sd": float(d.std(ddof=1)),
        "sd_cluster": float(d.mean(axis=1).std(ddof=1)),
        "psi": float(np.mean(d != 0)),
    }


def _stated(kind: str, clusters: int, per: int, truth: dict, delta: float | None = None):
    """The PowerAnalysis evalflow stores for this design, from the true variances."""
    n = (clusters or 1) * per
    test = (
        "clustered paired t" if clusters else ("exact McNemar" if kind == "binary" else "paired t")
    )
    return power_for_test(
        test,
        n=n,
        sd_diff=truth["sd"],
        se_diff=None if not clusters else truth["sd_cluster"] / math.sqrt(clusters),
        n_clusters=clusters or None,
        n_discordant=None if truth["psi"] is None else round(truth["psi"] * n),
        delta=delta,
        alpha=ALPHA,
    )


def _mde(kind: str, clusters: int, per: int) -> tuple[float, dict]:
    """The stated minimum detectable difference at 80% power: a fixed point, since the
    variance of 0/1 differences moves with the difference itself."""
    delta = 0.0
    for _ in range(6):
        truth = _truth(kind, clusters, per, delta)
        delta = _stated(kind, clusters, per, truth).min_detectable_difference
    return delta, _truth(kind, clusters, per, delta)


def _observed(kind: str, clusters: int, per: int, delta: float, experiments: int, rng) -> float:
    hits = 0
    for _ in range(experiments):
        if kind == "binary" and clusters:
            (a, b), g = clustered_binary([BASE_Q + delta, BASE_Q], clusters, per, rng)
        elif kind == "binary":
            (a, b), g = binary_scores([BASE_Q + delta, BASE_Q], per, rng), None
        elif clusters:
            (a, b), g = clustered_continuous([0.5 + delta, 0.5], clusters, per, rng)
        else:
            (a, b), g = continuous_scores([0.5 + delta, 0.5], per, rng), None
        res = compare_scores(a, b, groups=g, score_type=kind)
        hits += res.p_value <= ALPHA
    return hits / experiments


def power_calibration(experiments: int, seed: int) -> list[dict]:
    """Per design: the stated MDE (80% power for the test run), the power observed at it,
    and the power observed at the old z / unclustered-variance MDE."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, kind, clusters, per in DESIGNS:
        delta, truth = _mde(kind, clusters, per)
        n = (clusters or 1) * per
        old = z_sum(ALPHA, 0.80) * truth["sd"] / math.sqrt(n)
        if kind == "binary":
            old = min(old, 1 - BASE_Q)
        rows.append(
            {
                "design": name,
                "test": _stated(kind, clusters, per, truth).test,
                "mde": delta,
                "observed": _observed(kind, clusters, per, delta, experiments, rng),
                "old_mde": old,
                "observed_old": _observed(kind, clusters, per, old, experiments, rng),
            }
        )
    return rows


def cases_needed_check(experiments: int, seed: int) -> list[dict]:
    """Cases (clusters) needed for a fixed δ, and the power observed at that size."""
    rng = np.random.default_rng(seed)
    out = []
    for name, kind, clusters, per, delta in (
        ("0/1, independent cases", "binary", 0, None, 0.08),
        ("continuous, clusters of 20", "continuous", 9, 20, 0.04),
    ):
        truth = _truth(kind, clusters, per or 100, delta)
        plan = _stated(kind, clusters, per or 100, truth, delta)
        size = plan.clusters_needed if clusters else plan.cases_needed
        observed = _observed(
            kind, size if clusters else 0, per if clusters else size, delta, experiments, rng
        )
        out.append({"design": name, "delta": delta, "cases": plan.cases_needed,
                    "clusters": plan.clusters_needed, "observed": observed})  # fmt: skip
    return out


NON_NEG = (0.0, math.inf)
STARS = np.array([1, 2, 3, 4, 5])
STAR_P = np.array([0.02, 0.02, 0.04, 0.14, 0.78])
# name: (draw n per-case scores, true mean, scale)
BOUNDED_WORLDS = {
    "recall Beta(8, 1)": (lambda n, rng: rng.beta(8, 1, n), 8 / 9, (0.0, 1.0)),
    "recall k/5, p 0.9": (lambda n, rng: rng.binomial(5, 0.9, n) / 5, 0.9, (0.0, 1.0)),
    "ROUGE Beta(0.5, 8)": (lambda n, rng: rng.beta(0.5, 8, n), 0.5 / 8.5, (0.0, 1.0)),
    "pass@1, 3 samples": (
        lambda n, rng: rng.binomial(3, rng.beta(0.7, 0.3, n)) / 3,
        0.7,
        (0.0, 1.0),
    ),
    "stars 1-5, mean 4.62": (
        lambda n, rng: rng.choice(STARS, n, p=STAR_P).astype(float),
        float(STARS @ STAR_P),
        (1.0, 5.0),
    ),
    "share Beta(2, 2)": (lambda n, rng: rng.beta(2, 2, n), 0.5, (0.0, 1.0)),
    # half-bounded (>= 0): output_length, latency_s, ttft_s, tokens_per_s
    "lognormal(1, 0.5)": (lambda n, rng: rng.lognormal(1, 0.5, n), math.exp(1.125), NON_NEG),
    "lognormal(1, 1)": (lambda n, rng: rng.lognormal(1, 1, n), math.exp(1.5), NON_NEG),
    "counts, 60% zeros": (
        lambda n, rng: np.where(rng.random(n) < 0.6, 0, rng.poisson(5, n)).astype(float),
        2.0,
        NON_NEG,
    ),
    "exponential(3)": (lambda n, rng: rng.exponential(3, n), 3.0, NON_NEG),
}
BOUNDED_NS = (6, 12, 30, 100)
HEAVY_TAILED = ("lognormal(1, 1)",)  # checked against the t interval, not 0.93–0.97


def bounded_coverage(experiments: int, seed: int) -> list[dict]:
    """Per world and n: coverage of evalflow's bounded interval and of the plain t one,
    how often t left the scale and whether evalflow's ever did. Experiments whose values
    are all equal (degenerate: no interval to speak of) are left out and counted."""
    rng = np.random.default_rng(seed)
    out = []
    for name, (draw, truth, bounds) in BOUNDED_WORLDS.items():
        lo, hi = bounds
        for n in BOUNDED_NS:
            covered = covered_t = outside_t = outside = used = 0
            for _ in range(experiments):
                x = draw(n, rng)
                if np.all(x == x[0]):
                    continue
                used += 1
                a, b = mean_interval(x, bounds=bounds).ci
                ta, tb = mean_interval(x).ci
                covered += a <= truth <= b
                covered_t += ta <= truth <= tb
                outside += not (lo < a and b < hi)
                outside_t += ta < lo or tb > hi
            out.append(
                {
                    "world": name,
                    "n": n,
                    "used": used,
                    "coverage": covered / used,
                    "coverage_t": covered_t / used,
                    "outside_t": outside_t / used,
                    "outside": outside,
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500, help="per check 1 and 2")
    parser.add_argument(
        "--power-experiments", type=int, default=1000, help="per design in checks 3 and 4"
    )
    parser.add_argument(
        "--coverage-experiments", type=int, default=2000, help="per world and n in check 5"
    )
    parser.add_argument("--cases", type=int, default=300, help="cases per null experiment")
    parser.add_argument("--seed", type=int, default=20241101)
    parser.add_argument(
        "--checks", default="1,2,3,4,5", help="which checks to run, e.g. 5 (comma-separated)"
    )
    args = parser.parse_args()
    run = {int(c) for c in args.checks.split(",")}
    k, n, kp = args.experiments, args.cases, args.power_experiments
    # statsmodels' Holm step calls gc.collect(); freezing the imported modules' objects
    # makes that cheap (it dominated the run time otherwise).
    gc.freeze()
    start = time.perf_counter()
    failures = []

    def check(label: str, ok: bool) -> str:
        if not ok:
            failures.append(label)
        return "ok" if ok else "FAIL"

    if 1 in run:
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

    if 2 in run:
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

    if 3 in run:
        print(
            f"3. Power at the stated minimum detectable difference (80%, α = {ALPHA}, two-sided), "
            f"{kp} experiments per cell; old: the z formula with the unclustered variance"
        )
        print(f"   {'design':36} {'test':20} {'MDE':>7} {'stated':>6} {'observed':>8}"
              f"   {'old MDE':>7} {'observed':>8}")  # fmt: skip
        for r in power_calibration(kp, args.seed + 2):
            ok = check(f"power {r['design']}", abs(r["observed"] - 0.80) <= 0.05)
            print(
                f"   {r['design']:36} {r['test']:20} {r['mde']:7.4f} {0.80:6.2f} "
                f"{r['observed']:8.3f}   {r['old_mde']:7.4f} {r['observed_old']:8.3f}  {ok}"
            )
    if 4 in run:
        print(
            f"4. Cases needed for δ at 80% power, and the power observed there ({kp} experiments)"
        )
        for r in cases_needed_check(kp, args.seed + 3):
            size = f"{r['cases']} cases" + (f" ({r['clusters']} clusters)" if r["clusters"] else "")
            ok = check(f"cases needed {r['design']}", abs(r["observed"] - 0.80) <= 0.05)
            print(
                f"   {r['design']:28} δ = {r['delta']:<5} {size:24} "
                f"observed {r['observed']:.3f}  {ok}"
            )
    if 5 in run:
        kc = args.coverage_experiments
        print(
            f"5. Bounded scores: 95% interval coverage of the true mean ({kc} experiments each; "
            "evalflow's on the metric's scale, beside the plain t interval)"
        )
        print(f"   {'world':22} {'n':>4} {'evalflow':>9} {'t':>7} {'t off scale':>12}")
        for r in bounded_coverage(kc, args.seed + 4):
            target = (0.93, 0.97) if r["n"] >= 30 else (0.90, 1.0)
            if r["world"] in HEAVY_TAILED:
                target = (r["coverage_t"], 1.0)
            inside = r["outside"] == 0
            ok = check(
                f"coverage {r['world']} n={r['n']}",
                inside and target[0] <= r["coverage"] <= target[1],
            )
            wanted = "≥ t" if r["world"] in HEAVY_TAILED else f"{target[0]:.2f}–{target[1]:.2f}"
            print(
                f"   {r['world']:22} {r['n']:4d} {r['coverage']:9.3f} {r['coverage_t']:7.3f} "
                f"{r['outside_t']:12.3f}  [{wanted}, never off scale] {ok}"
                + ("" if r["used"] == kc else f"  ({kc - r['used']} all-equal left out)")
            )
    print(
        f"took {time.perf_counter() - start:.1f} s; "
        + ("all checks pass" if not failures else f"FAILED: {', '.join(failures)}")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
