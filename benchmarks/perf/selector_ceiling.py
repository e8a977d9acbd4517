"""How well could any selector do on the selector benchmark's data? A reference ceiling.

The selector benchmark (``selector_benchmark.py``) scores picks against the truth, and
at 10k generations a task type's configs are measured on ~200 (config, suite) pairs of
10 shared cases each, so effects of 2–4 points (template against template, model against
model near the top) are near the noise of the whole task's data. This script asks what
a method could reach that knew what no selector knows:

- the world's own functional form (``World.form`` in ``selector_worlds.py``: which
  factors change quality and how they combine), fitted by least squares to the same
  (config, suite) means the selector sees (suite effects pair configs on the same cases);
- the true p95 latency and energy of every config (no latency error, so no margin).
  ``--latency measured`` takes instead only what the data hold of latency: a config is
  feasible when measured on the task type (>= 10 ok generations) with its measured p95
  (and energy) within the limits, as the hand baseline reads it; how much of the gap
  to the ceiling is the latency of configs the data never timed on the task type.

Among the configs whose true p95 (and energy) meets each held-out query's limits, it
picks the best fitted quality; a hit is the benchmark's: within 1 point of the truly best
feasible config. ``--structure general`` fits instead a form that allows the interactions
of both worlds (model × temperature, model × template) in either: what knowing only that
settings other than top_p/num_ctx do not matter would give. ``--structure selector``
takes the selector's own quality estimate (the multilevel model of the measured means,
:func:`selection.shrinkage.quality_fit`) with the true latencies: how much of the gap
between the selector and the ceiling is its quality estimate, and how much its latency
estimate and margin.

    .venv/bin/python benchmarks/perf/selector_ceiling.py [--worlds additive cliff ...] \
        [--sizes 10000] [--seeds ...] [--structure own|general|selector]

``selector_benchmark.py`` reports the own-form ceiling beside the selector on the same
data (its ``ceiling_hit``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

# Sibling scripts are imported by name: their folder goes first on the path, so this works
# from any folder (`python benchmarks/perf/NAME.py` or `python -m benchmarks.perf.NAME`
# from the repository root, or imported from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import selector_benchmark as bench
import statsmodels.formula.api as smf
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from evaluation.spec import Config
from selection.aggregate import case_scores, evidence
from selection.frame import config_table, validate_training_frame
from selection.shrinkage import quality_fit

HELD_OUT = [task for task in bench.TASK_TYPES if task not in bench.TUNING_TASKS]
GENERAL = (
    "quality ~ C(model) * C(temperature) + C(model) * C(template) + C(num_ctx) + C(top_p)"
    " + C(suite)"
)


def settings(all_configs: list[Config]) -> pd.DataFrame:
    """Every config's factors, by config hash."""
    return pd.DataFrame(
        [
            {
                "config_hash": c.hash,
                "model": c.model,
                "template": c.template.name,
                **{name: str(getattr(c.params, name)) for name in bench.GRID},
            }
            for c in all_configs
        ]
    ).set_index("config_hash")


def fitted_quality(frame: pd.DataFrame, factors: pd.DataFrame, formula: str) -> pd.DataFrame:
    """Per held-out task type, every config's quality by ``formula`` fitted by least
    squares to the (config, suite) means, read at the task's first suite (NaN for a
    config with a level the task's data never saw: at 1k, a model may be missing)."""
    ok = frame[frame["status"] == "ok"]
    out = {}
    for task in HELD_OUT:
        rows = ok[ok["task_type"] == task]
        means = rows.groupby(["config_hash", "suite"])["quality"].mean().reset_index()
        means = means.join(factors, on="config_hash")
        grid = factors.assign(suite=means["suite"].min())
        seen = np.logical_and.reduce([grid[c].isin(means[c]) for c in factors.columns])
        if means.empty:
            out[task] = pd.Series(np.nan, index=grid.index)
            continue
        fit = smf.ols(formula, data=means).fit()
        out[task] = fit.predict(grid[seen]).reindex(grid.index)  # NaN: a level never measured
    return pd.DataFrame(out)


@dataclass
class Measurements:
    """What :func:`selection.shrinkage.quality_fit` reads of a selector: no trees needed."""

    evidence: pd.DataFrame
    configs: pd.DataFrame
    case_scores: pd.DataFrame
    _multilevel: dict = field(default_factory=dict)


def selector_quality(frame: pd.DataFrame) -> pd.DataFrame:
    """Per held-out task type, the selector's multilevel quality estimate of every config
    it knows (measured on some task type); NaN for the others."""
    frame = validate_training_frame(frame)
    measured = Measurements(evidence(frame), config_table(frame), case_scores(frame))
    return pd.DataFrame({task: quality_fit(measured, task).mean for task in HELD_OUT})


def hits(
    estimate: pd.DataFrame,
    truth: pd.DataFrame,
    asked: pd.DataFrame,
    measured: pd.DataFrame | None = None,
) -> float:
    """Share of held-out queries where the best-estimated feasible config is truly
    feasible and within 1 point of the truly best feasible one. Feasible: by the true
    latencies, or, given ``measured`` (:func:`selector_benchmark.hand_table`), by what the
    data hold of them: measured on the task type with >= 10 ok generations, measured p95
    (and energy) within the limits, as the hand baseline reads them."""
    found = []
    for query in asked[asked["held_out"]].itertuples():
        energy = None if pd.isna(query.max_energy_j) else float(query.max_energy_j)
        feasible = bench.truly_feasible(truth, query.task_type, query.max_latency_s, energy)
        if feasible.empty:
            found.append(True)
            continue
        quality = feasible.set_index("config_hash")["quality"]
        candidates = quality.index
        if measured is not None:
            feasible_measured = bench.measured_feasible(
                measured, query.task_type, query.max_latency_s, energy
            )
            candidates = pd.Index(feasible_measured["config_hash"])
        estimated = estimate[query.task_type].reindex(candidates).dropna()
        if estimated.empty:  # no feasible config it can estimate: no pick, a miss
            found.append(False)
            continue
        pick = estimated.idxmax()
        found.append(bool(pick in quality.index and quality[pick] >= quality.max() - 0.01))
    return float(np.mean(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=list(bench.WORLDS), default=bench.FAMILY)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(bench.REPORT_SEEDS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/evalflow-selector-worlds"))
    parser.add_argument("--structure", choices=("own", "general", "selector"), default="own")
    parser.add_argument(
        "--latency",
        choices=("true", "measured"),
        default="true",
        help="feasibility by the true latencies, or only by what the data measured",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    # A level seen on one suite only makes the design rank-deficient; the pseudo-inverse
    # fit (minimum-norm) still predicts, as a reference it is good enough.
    warnings.filterwarnings("ignore", category=SingularMatrixWarning)
    for name in args.worlds:
        world = bench.WORLDS[name]
        all_configs = bench.configs(world)
        factors = settings(all_configs)
        truth = bench.truth_table(world, all_configs)
        formula = world.form if args.structure == "own" else GENERAL
        for size in args.sizes:
            per_seed = []
            for seed in args.seeds:
                frame = bench.simulate(world, all_configs, size, seed, args.cache)
                if args.structure == "selector":
                    estimate = selector_quality(frame)
                else:
                    estimate = fitted_quality(frame, factors, formula)
                measured = (
                    bench.hand_table(validate_training_frame(frame))
                    if args.latency == "measured"
                    else None
                )
                per_seed.append(hits(estimate, truth, bench.queries(truth, seed + 1), measured))
            mean, se = np.mean(per_seed), np.std(per_seed, ddof=1) / np.sqrt(len(per_seed))
            print(
                f"{name} {size:,} ({args.structure} structure, {args.latency} latency): "
                f"limit-respecting hit {mean:.1%} ± {se:.1%} over {len(per_seed)} seeds "
                f"(per seed: {', '.join(f'{h:.0%}' for h in per_seed)})"
            )


if __name__ == "__main__":
    main()
