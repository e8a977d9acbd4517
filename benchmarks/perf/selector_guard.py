"""The by-hand guard tried offline: how stricter rules for "never below the by-hand
choice" would have answered the selector benchmark's queries (issue 50, item 1).

For one unit of ``selector_benchmark.py`` (world, size, seed: the same data and
queries) the selector is trained once and each query answered; kept per unit in
``--tables DIR``: each task type's scored candidate table (estimates, their sd and
weight, measurements; it does not depend on the limits), per query the selector's
feasible candidates and its measured-feasible ones, its pick, the hand and aa5f504
picks, the truth, and per task type whether its data are ample
(:attr:`selection.multilevel.Fit.ample`; a unit kept before that was is trained again
for it, without answering). A 10k unit takes ~35 minutes on two loaded cores; a rule then
takes seconds. Each variant is applied to the selector's pick (after its own rules)
and printed per task type and third of limit tightness beside the selector, aa5f504
and by hand, with ``selector_benchmark``'s marks (▼ below by hand, ▽ below aa5f504
beyond noise, paired per query):

- ``by hand``: always the by-hand choice (best measured mean) among the selector's
  measured-feasible candidates (the benchmark's ``by hand`` row uses every
  measured-feasible config, with no latency margin);
- ``floor on by hand``: the pick gives way to that choice unless estimated
  significantly better (one-sided z, α = 5%, the two estimates taken as independent)
  or its estimate rests mostly on measurements (weight ≥ ``EVIDENCE_WEIGHT``), as
  :func:`selection._evidence_rule.hand_floor` does for the best-estimated measured
  config;
- ``floor, no exemption``: the same without the exemption;
- ``best-estimated floor, no exemption``: the same against the best combined estimate
  among them (``hand_floor``'s floor) instead of the best measured mean;
- ``thin-data floor``: where the task type's data are thin, the by-hand choice unless
  the pick is estimated at least as high as that choice's measurement, as
  :func:`selection._evidence_rule.measured_floor` does (``…, significantly better``:
  significantly higher, by its mean and standard error, the rule before); where they
  are ample, the pick;
- ``weaker evidence``: the by-hand choice wherever the pick's sd exceeds that choice's
  measured standard error and the pick is not significantly better (the issue's words:
  "when the model's evidence for a predicted config is weaker than the measured
  alternative's").

    PYTHONPATH=. .venv/bin/python benchmarks/perf/selector_guard.py --worlds interacting \\
        --size 10000 --seed 1000 [--tables DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import selector_benchmark as bench

from selection._candidates import candidate_table
from selection._choice import violations
from selection._evidence_rule import EVIDENCE_WEIGHT, measured_feasible
from selection.frame import validate_training_frame
from selection.model import SelectorModel
from selection.recommender import recommend_from_model, scored_candidates
from selection.shrinkage import quality_fit
from selection.training import train_selector

Z = NormalDist().inv_cdf(0.95)
COLUMNS = ("quality", "quality_sd", "quality_weight", "measured_quality_mean")


def unit_tables(world_name: str, size: int, seed: int, cache: Path, data: Path) -> dict:
    """The unit's tables and per-query answers (module docstring), read from ``cache``
    when kept before; the drawn data (and aa5f504's picks) from ``data``, the
    benchmark's cache."""
    path = cache / f"{world_name}-{size}-{seed}.pkl"
    kept = pickle.loads(path.read_bytes()) if path.exists() else None
    if kept is not None and "ample" in kept:
        return kept
    world, all_configs, truth = bench._world(world_name)
    frame = validate_training_frame(bench.simulate(world, all_configs, size, seed, data))
    model = train_selector(frame).model
    ample = {task: _ample(model, task) for task in bench.TASK_TYPES}
    if kept is not None:  # kept before the fits were: training again is enough
        path.write_bytes(pickle.dumps({**kept, "ample": ample}))
        return {**kept, "ample": ample}
    asked = bench.queries(truth, seed + 1)
    unit = bench.Unit(world_name, size, seed, False)
    old = bench._baseline_picks(unit, world, frame, asked, bench.Settings(data, False, False))
    hand = bench.hand_table(frame)
    tables, rows = {}, []
    for i, query in enumerate(asked.itertuples()):
        task, limit = query.task_type, float(query.max_latency_s)
        energy = None if pd.isna(query.max_energy_j) else float(query.max_energy_j)
        chars = world.prompt_words[task] * bench.CHARS_PER_WORD
        if task not in tables:
            table, _ = candidate_table(model, None, task)
            tables[task] = scored_candidates(model, table, task, chars)
        table = tables[task]
        found = violations(table, model, limit, energy, None)[1]
        feasible = table[[not v for v in found]]
        answer = recommend_from_model(
            model, task, max_latency_s=limit, max_energy_j=energy, input_chars=chars
        )
        rows.append(
            {
                "task_type": task,
                "tightness": query.tightness,
                "held_out": query.held_out,
                "limit": limit,
                "energy": energy,
                "by_hand": list(measured_feasible(feasible, limit, None).index),
                "pick": answer.choice.config_hash if answer.choice is not None else None,
                "hand": bench.hand_pick(hand, task, limit, energy),
                "old": old[i],
            }
        )
    kept = {
        "tables": {
            task: t[list(COLUMNS)].assign(measured_se=t["measured_quality_se"])
            for task, t in tables.items()
        },
        "truth": truth,
        "rows": rows,
        "ample": ample,
    }
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(kept))
    return kept


def _ample(model: SelectorModel, task: str) -> bool:
    found = quality_fit(model, task)
    return found is not None and found.ample


Rule = Callable[[dict, pd.DataFrame], "str | None"]


def by_hand(row: dict, table: pd.DataFrame) -> str | None:
    """The best measured mean among the selector's measured-feasible candidates."""
    found = table.loc[row["by_hand"], "measured_quality_mean"]
    return None if found.empty else str(found.idxmax())


def best_estimated(row: dict, table: pd.DataFrame) -> str | None:
    """The best combined estimate among them (the floor ``hand_floor`` holds picks to)."""
    found = table.loc[row["by_hand"], "quality"]
    return None if found.empty else str(found.idxmax())


def floor_on_hand(exempt: bool, floor: Rule = by_hand) -> Rule:
    def rule(row: dict, table: pd.DataFrame) -> str | None:
        pick, hand = row["pick"], floor(row, table)
        if pick is None or hand is None or hand == pick:
            return pick
        p, h = table.loc[pick], table.loc[hand]
        if exempt and np.nan_to_num(p["quality_weight"]) >= EVIDENCE_WEIGHT:
            return pick
        spread = math.hypot(p["quality_sd"], h["quality_sd"])
        return pick if p["quality"] - h["quality"] > Z * spread else hand

    return rule


def thin_measured_floor(significant: bool) -> Rule:
    """Where the task type's data are thin, the by-hand choice unless the pick is
    estimated at least as high as that choice's measurement (as landed), or with
    ``significant`` significantly higher (its mean and standard error: the rule before);
    where they are ample, the pick."""

    def rule(row: dict, table: pd.DataFrame) -> str | None:
        pick, hand = row["pick"], by_hand(row, table)
        if row["ample"] or pick is None or hand is None or hand == pick:
            return pick
        p, h = table.loc[pick], table.loc[hand]
        spread = math.hypot(p["quality_sd"], h["measured_se"]) if significant else 0.0
        return pick if p["quality"] - h["measured_quality_mean"] >= Z * spread else hand

    return rule


def weaker_evidence(row: dict, table: pd.DataFrame) -> str | None:
    pick, hand = row["pick"], by_hand(row, table)
    if pick is None or hand is None or hand == pick:
        return pick
    p, h = table.loc[pick], table.loc[hand]
    if p["quality_sd"] <= h["measured_se"]:
        return pick
    spread = math.hypot(p["quality_sd"], h["quality_sd"])
    return pick if p["quality"] - h["quality"] > Z * spread else hand


RULES: dict[str, Rule] = {
    "by hand (selector's candidates)": lambda row, table: by_hand(row, table) or row["pick"],
    "floor on by hand": floor_on_hand(exempt=True),
    "floor, no exemption": floor_on_hand(exempt=False),
    "best-estimated floor, no exemption": floor_on_hand(False, best_estimated),
    "thin-data floor (landed)": thin_measured_floor(significant=False),
    "thin-data floor, significantly better (before)": thin_measured_floor(significant=True),
    "weaker evidence": weaker_evidence,
}


def fair_hits(kept: dict, rule: Rule | str) -> list[bool]:
    """Per query, the limit-respecting hit of ``rule``'s pick (or of the pick kept
    under that name)."""
    truth, found = kept["truth"], []
    for row in kept["rows"]:
        table = kept["tables"][row["task_type"]]
        row = {**row, "ample": kept["ample"][row["task_type"]]}
        pick = row[rule] if isinstance(rule, str) else rule(row, table)
        feasible = bench.truly_feasible(truth, row["task_type"], row["limit"], row["energy"])
        best = feasible["quality"].max() if len(feasible) else None
        if pick is None:
            found.append(best is None)
            continue
        found.append(
            best is not None
            and pick in set(feasible["config_hash"])
            and float(feasible.set_index("config_hash").loc[pick, "quality"]) >= best - 0.01
        )
    return found


def report(name: str, size: int, kept: dict) -> None:
    base = pd.DataFrame(
        {
            "task_type": [r["task_type"] for r in kept["rows"]],
            "tightness": [r["tightness"] for r in kept["rows"]],
            "hand_fair_hit": fair_hits(kept, "hand"),
            "old_fair_hit": fair_hits(kept, "old"),
        }
    )
    columns = [*bench.TASK_TYPES, *bench.TIGHTNESS, "all"]
    whos = {"selector": "pick", **RULES}
    for who, rule in whos.items():
        table = base.assign(fair_hit=fair_hits(kept, rule))
        shown = [
            f"{100 * part['fair_hit'].mean():.1f}{bench._marks(part)}"
            for part in (bench._cell(table, c) for c in columns)
        ]
        print(f"| {name} | {size:,} | {who} | {' | '.join(shown)} |")
    for who, column in ((bench.BASELINE_COMMIT, "old_fair_hit"), ("by hand", "hand_fair_hit")):
        shown = [f"{100 * bench._cell(base, c)[column].mean():.1f}" for c in columns]
        print(f"| {name} | {size:,} | {who} | {' | '.join(shown)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=list(bench.WORLDS), required=True)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=bench.REPORT_SEEDS[0])
    parser.add_argument("--tables", type=Path, default=Path("/tmp/evalflow-selector-guard"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/evalflow-selector-worlds"))
    args = parser.parse_args()
    columns = [*bench.TASK_TYPES, *bench.TIGHTNESS, "all"]
    print(f"| world | generations | who | {' | '.join(columns)} |")
    print("|---|---|---|" + "---|" * len(columns))
    for name in args.worlds:
        report(name, args.size, unit_tables(name, args.size, args.seed, args.tables, args.cache))


if __name__ == "__main__":
    main()
