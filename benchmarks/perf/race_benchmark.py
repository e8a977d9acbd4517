"""Does a race find the truly best config for a fraction of the full grid's generations?

Simulated, known truth, no Prefect: scores are drawn straight from a simulated world's
ground truth and fed to :class:`evaluation.adaptive.Race` round by round. Worlds
(``--worlds``): "demo", the simulated backend's own truth
(``evaluation.backends._simulated_truth``) and "interacting"
(``evaluation.backends._simulated_interacting``: templates interact with model size,
temperature sensitivity differs by model, prompts beyond num_ctx are truncated), and the
selector family's cliff, flat and sampling (``selector_worlds.py``). The race
knows nothing of either: it sees only 0/1 scores.

A trial is one 300-case suite of one task type (trial i: the i-th of the five task types,
in turn), 30 groups of 10 cases sharing a source: a group's cases share a prompt length
(log-normal around the world's typical length) and part of their difficulty. Whether a
config answers a case is the simulated backend's Gaussian copula: correct ⇔
√0.5·z_case + √0.5·e < Φ⁻¹(quality), z_case = √0.6·own + √0.4·group, so configs are
correlated on cases. A config's true score on the suite is its mean true quality over
the suite's cases; the truly best config is the one with the highest.

Per grid (24 and 96 configs) and world, over the trials: how often the pick is the truly
best config or within ``--delta`` of it (the race's delta too; default 0.01, 1 point of
0–100); how often the truly best is eliminated; generations used as a share of the full
grid (median, 90th percentile); why races stopped. The same for the race with a budget
of 25% of the full grid. Baselines on the same draws: the full grid (all cases, all
configs), and a fixed random subsample of the same budget (every config on the same
random cases, as many generations as the race used), each picking the best measured
mean.

Clustering the race is not told about (``--source-effect``, ``--declare``): with a
source effect each config also does better or worse on a whole group (its share of the
latent noise is the source effect: √s·v[group, config]), so configs' differences
cluster by source, as cases drawn from documents do. ``--declare groups`` gives the
race the groups (as a suite declaring them); ``metadata`` declares none but puts each
case's source in its metadata (the race finds it: ``evaluation.adaptive._clusters``);
``none`` gives it nothing, the suite listing a source's cases together (the race
clusters runs of consecutive cases); ``shuffled`` gives it nothing and lists the cases
in random order (nothing can find the sources: the race says its bound is not promised
for a shuffled suite). The sources are 30 runs of 10 cases in the suite's order;
``--sources N`` makes them N runs of 300/N (the race's runs are ⌈√300⌉ = 18 cases
whatever the sources are). Beside the race, an anytime-valid confidence-sequence elimination on the
same looks (a normal-mixture boundary for paired differences in [−1, 1], sub-Gaussian
with variance proxy 1, union over the K − 1 rivals, no union over looks: Howard et al.,
Ann. Statist. 49, 2021), as TensorZero's top-k evaluation uses, and a fixed random
subsample of the race's budget.

What any race on this schedule could use (the floor): a config whose true gap to the
best is g, with sd s of its paired differences with the best, is dropped at about the
first look n where g ≥ z·s/√n (its expected z crosses the critical value). Summed over
the configs (the best runs the whole suite), at the race's per-test z and at z = 1.645
(one unadjusted one-sided 5% test per look and rival: no error control over looks or
rivals at all), median and 90th percentile: whether ≤ 25% of the full grid is within
reach of any valid race, or what 300 cases can reveal forbids it.

    .venv/bin/python benchmarks/perf/race_benchmark.py [--trials 200] \
        [--grids 24 96] [--worlds demo interacting] [--delta 0.01] \
        [--source-effect 0.3] [--declare groups|metadata|none]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from selector_worlds import WORLDS as FAMILY

from evaluation.adaptive import Race, RaceSettings, case_clustering, race_schedule, round_ends
from evaluation.backends import _simulated_interacting as interacting
from evaluation.backends import _simulated_truth as demo
from evaluation.spec import GenerationParams

MODELS = ("sim-small:1b", "sim-medium:3b", "sim-large:8b", "sim-xl:14b")
GRIDS = {
    24: {"temperature": (0.0, 0.5, 1.0), "template": ("default", "cot"), "num_ctx": (2048,)},
    96: {
        "temperature": (0.0, 0.4, 0.8, 1.2),
        "template": ("default", "cot", "few_shot"),
        "num_ctx": (1024, 4096),
    },
}
WORLDS = {
    "demo": (demo.true_profile, demo.TYPICAL_PROMPT_WORDS),
    "interacting": (interacting.true_profile, interacting.TYPICAL_PROMPT_WORDS),
    **{
        name: (FAMILY[name].profile, FAMILY[name].prompt_words)
        for name in ("cliff", "flat", "sampling")
    },
}
"""The selector family's worlds whose quality differs from these two (tails has the
additive quality, uneven the interacting; the race only sees quality)."""
TASK_TYPES = demo.TASK_TYPES
N_CASES, N_GROUPS = 300, 30
GROUP_SHARE = 0.4  # share of a case's difficulty that its group shares
DIFFICULTY = 0.5  # share of the 0/1 latent that is the case's own (as in the backend)
LENGTH_SIGMA = 0.4  # log-normal spread of a group's prompt length around the typical
BUDGET_SHARE = 0.25
NEAR_POINTS = 0.05  # "near the best": the configs counted in the report
UNADJUSTED_Z = float(norm.isf(0.05))


@dataclass(frozen=True)
class Grid:
    names: tuple[str, ...]
    settings: tuple[tuple[str, GenerationParams, str], ...]


def grid(size: int) -> Grid:
    axes = GRIDS[size]
    settings = [
        (model, GenerationParams(temperature=t, num_ctx=c, num_predict=512), template)
        for model, t, template, c in itertools.product(
            MODELS, axes["temperature"], axes["template"], axes["num_ctx"]
        )
    ]
    assert len(settings) == size
    names = tuple(f"{m}|t={p.temperature}|{tpl}|ctx={p.num_ctx}" for m, p, tpl in settings)
    return Grid(names, tuple(settings))


def suite_truth(
    world: str, g: Grid, task: str, rng: np.random.Generator, n_sources: int = N_GROUPS
):
    """Per-case true quality (cases × configs) and each case's source, of one suite."""
    profile, words = WORLDS[world]
    group_words = words[task] * rng.lognormal(0, LENGTH_SIGMA, n_sources)
    group_tokens = [demo.tokens(max(5, round(w))) for w in group_words]
    per_group = np.array(
        [
            [
                profile(model, params, template, task, prompt_tokens=tokens).quality
                for model, params, template in g.settings
            ]
            for tokens in group_tokens
        ]
    )
    group_of_case = np.repeat(np.arange(n_sources), N_CASES // n_sources)
    return per_group[group_of_case], group_of_case


def draw(
    quality: np.ndarray,
    group_of_case: np.ndarray,
    rng: np.random.Generator,
    source_effect: float = 0.0,
):
    """0/1 scores (cases × configs) from the simulated backend's copula; a
    ``source_effect`` share of each config's own noise is shared by the group's cases."""
    n, k = quality.shape
    n_sources = int(group_of_case.max()) + 1
    z_group = rng.normal(size=n_sources)[group_of_case]
    z_case = math.sqrt(1 - GROUP_SHARE) * rng.normal(size=n) + math.sqrt(GROUP_SHARE) * z_group
    own = math.sqrt(1 - source_effect) * rng.normal(size=(n, k))
    if source_effect:
        own += math.sqrt(source_effect) * rng.normal(size=(n_sources, k))[group_of_case]
    latent = math.sqrt(DIFFICULTY) * z_case[:, None] + math.sqrt(1 - DIFFICULTY) * own
    return (latent < norm.ppf(np.clip(quality, 1e-9, 1 - 1e-9))).astype(float)


def floor_share(scores: np.ndarray, true_score: np.ndarray, z: float) -> float:
    """Generations (share of the full grid) if every config were dropped at the first look
    where its true gap to the best reaches z times the SE of their paired difference."""
    best = int(np.argmax(true_score))
    gap = true_score[best] - true_score
    sd = (scores[:, [best]] - scores).std(axis=0, ddof=1)
    ends = np.array(round_ends(len(scores)))
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.where(gap > 0, (z * sd / gap) ** 2, np.inf)
    dropped_at = [int(ends[np.argmax(ends >= m)]) if m <= ends[-1] else ends[-1] for m in needed]
    return float(np.sum(dropped_at)) / scores.size


def run_race(names, ids, groups, scores, seed, budget, delta, declare="groups"):
    """The race as a sweep runs it: ``declare`` says what the suite tells it of the
    groups (module docstring); ``ids`` are in the suite's order."""
    means = pd.DataFrame(scores, index=ids, columns=list(names))
    if declare == "shuffled":
        ids = [ids[i] for i in np.random.default_rng([seed, 1]).permutation(len(ids))]
        groups = None
    declared = list(groups) if declare == "groups" else [None] * len(ids)
    metadata = [{"source": g} for g in groups] if declare == "metadata" else None
    clustering = case_clustering(ids, declared, metadata)
    schedule = race_schedule(ids, list(clustering.groups), seed=seed, suite="bench")
    race = Race(list(names), schedule, RaceSettings(delta=delta, budget=budget), clustering)
    while race.next_round() is not None:
        race.close_round(means)
    return race


CS_RHO = 50.0
"""The normal mixture's prior precision: the boundary is tightest near n ≈ 50–150."""


def cs_race(names, ids, scores, order, alpha: float) -> tuple[int, set[int], int]:
    """Anytime-valid elimination on the race's looks: at n cases a survivor is dropped
    when the leader's mean paired lead exceeds the confidence sequence's radius
    sqrt(2(n + ρ)/n² · log(sqrt((n + ρ)/ρ)·(K − 1)/α)) (differences in [−1, 1],
    variance proxy 1). Returns the pick (best mean among the survivors), the survivors
    and the generations used."""
    k = len(names)
    alive = np.ones(k, dtype=bool)
    spent, seen = 0, 0
    level = alpha / max(1, k - 1)
    for end in round_ends(len(ids)):
        rows = scores[order[:end]]
        spent += int(alive.sum()) * (end - seen)
        seen = end
        mean = rows.mean(axis=0)
        leader = int(np.argmax(np.where(alive, mean, -np.inf)))
        radius = math.sqrt(
            2 * (end + CS_RHO) / end**2 * math.log(math.sqrt((end + CS_RHO) / CS_RHO) / level)
        )
        alive &= ~((mean[leader] - mean) > radius)
        if alive.sum() == 1:
            break
    mean = scores[order[:seen]].mean(axis=0)
    pick = int(np.argmax(np.where(alive, mean, -np.inf)))
    return pick, set(np.flatnonzero(alive).tolist()), spent


def trial(
    world: str,
    g: Grid,
    index: int,
    delta: float,
    source_effect: float,
    declare: str,
    n_sources: int = N_GROUPS,
) -> dict[str, object]:
    rng = np.random.default_rng([index, len(g.names), list(WORLDS).index(world)])
    task = TASK_TYPES[index % len(TASK_TYPES)]
    quality, group_of_case = suite_truth(world, g, task, rng, n_sources)
    true_score = quality.mean(axis=0)
    best = int(np.argmax(true_score))
    ok = true_score >= true_score[best] - delta
    scores = draw(quality, group_of_case, rng, source_effect)
    ids = [f"case-{i:03d}" for i in range(N_CASES)]
    groups = [f"src-{j}" for j in group_of_case]
    full = len(g.names) * N_CASES
    row: dict[str, object] = {
        "task": task,
        "full_hit": bool(ok[int(np.argmax(scores.mean(0)))]),
        "near": int(np.sum(true_score >= true_score[best] - NEAR_POINTS)),
    }
    order = rng.permutation(N_CASES)
    cs_pick, cs_alive, cs_spent = cs_race(g.names, ids, scores, order, 0.05)
    row |= {
        "cs_hit": bool(ok[cs_pick]),
        "cs_best_out": best not in cs_alive,
        "cs_share": cs_spent / full,
    }
    for label, budget in (("race", None), ("budget", int(BUDGET_SHARE * full))):
        race = run_race(g.names, ids, groups, scores, index, budget, delta, declare)
        if budget is None:
            row["floor_race"] = floor_share(scores, true_score, float(norm.isf(race.level)))
            row["floor_unadjusted"] = floor_share(scores, true_score, UNADJUSTED_Z)
        pick = g.names.index(race.outcome.pick)
        used = race.spent
        sub = order[: max(1, used // len(g.names))]
        row |= {
            f"{label}_hit": bool(ok[pick]),
            f"{label}_best_out": g.names[best] not in race.outcome.survivors,
            f"{label}_share": used / full,
            f"{label}_stop": race.outcome.reason,
            f"{label}_sub_hit": bool(ok[int(np.argmax(scores[sub].mean(0)))]),
        }
        if budget is None:
            row["bound"] = race.clustering.basis if race.clustering else "declared"
    return row


def report(world: str, size: int, rows: pd.DataFrame, seconds: float, delta: float) -> None:
    hit = f"within {delta * 100:g} point{'' if delta == 0.01 else 's'}"
    print(
        f"\n{world} world, {size} configs x {N_CASES} cases, {len(rows)} trials ({seconds:.0f} s)"
    )
    print(f"  full grid (100%): pick {hit} {rows.full_hit.mean():.1%}")
    print(
        f"  configs within {NEAR_POINTS * 100:g} points of the best: median "
        f"{rows.near.median():g}, p90 {rows.near.quantile(0.9):g}; floor of any race "
        f"(generations median, p90): at the race's z {rows.floor_race.median():.1%}, "
        f"{rows.floor_race.quantile(0.9):.1%}; at z {UNADJUSTED_Z:.3f} (no error control) "
        f"{rows.floor_unadjusted.median():.1%}, {rows.floor_unadjusted.quantile(0.9):.1%}"
    )
    out = rows.race_best_out.mean()
    se = math.sqrt(out * (1 - out) / len(rows))
    print(
        f"  clustering the race used: {dict(Counter(rows.bound))}; truly best eliminated "
        f"{rows.race_best_out.mean():.1%} ± {se:.1%} (binomial SE); paired pick difference "
        f"race − full grid {100 * (rows.race_hit.mean() - rows.full_hit.mean()):+.1f} points"
    )
    print(
        f"  confidence-sequence elimination: pick {hit} {rows.cs_hit.mean():.1%}; truly best "
        f"eliminated {rows.cs_best_out.mean():.1%}; generations median "
        f"{rows.cs_share.median():.1%}, p90 {rows.cs_share.quantile(0.9):.1%}"
    )
    for label, name in (("race", "race"), ("budget", f"race, budget {BUDGET_SHARE:.0%}")):
        share = rows[f"{label}_share"]
        stops = Counter(rows[f"{label}_stop"])
        print(
            f"  {name}: pick {hit} {rows[f'{label}_hit'].mean():.1%}; truly best "
            f"eliminated {rows[f'{label}_best_out'].mean():.1%}; generations median "
            f"{share.median():.1%}, p90 {share.quantile(0.9):.1%} of the full grid; "
            f"random subsample of the same budget: {hit} "
            f"{rows[f'{label}_sub_hit'].mean():.1%}; stops {dict(stops)}"
        )
    by_task = rows.groupby("task")[["full_hit", "race_hit", "budget_hit"]].mean()
    print("  by task type (full / race / race with budget):")
    for task, r in by_task.iterrows():
        print(f"    {task}: {r.full_hit:.0%} / {r.race_hit:.0%} / {r.budget_hit:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--grids", type=int, nargs="+", default=[24, 96], choices=list(GRIDS))
    parser.add_argument(
        "--delta", type=float, default=0.01, help="the race's delta and the hit criterion"
    )
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument(
        "--source-effect", type=float, default=0.0, help="share of a config's noise per source"
    )
    parser.add_argument(
        "--declare", choices=("groups", "metadata", "none", "shuffled"), default="groups"
    )
    parser.add_argument(
        "--sources", type=int, default=N_GROUPS, help=f"sources per suite ({N_CASES} cases)"
    )
    args = parser.parse_args()
    if N_CASES % args.sources:
        parser.error(f"--sources must divide {N_CASES}")
    for world in args.worlds:
        for size in args.grids:
            g = grid(size)
            start = time.perf_counter()
            rows = pd.DataFrame(
                [
                    trial(world, g, i, args.delta, args.source_effect, args.declare, args.sources)
                    for i in range(args.trials)
                ]
            )
            report(world, size, rows, time.perf_counter() - start, args.delta)


if __name__ == "__main__":
    main()
