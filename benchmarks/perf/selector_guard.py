"""The by-hand guard tried offline: how stricter rules for "never below the by-hand
choice" would have answered the selector benchmark's queries (issue 50, item 1).

For one unit of ``selector_benchmark.py`` (world, size, seed: the same data and
queries) the selector is trained once and each query answered; kept per unit in
``--tables DIR``: each task type's scored candidate table (estimates, their sd and
weight, measurements; it does not depend on the limits), per query the selector's
feasible candidates and its measured-feasible ones, its pick, the hand and aa5f504
picks, the truth, and per task type whether its data are ample
(:attr:`selection.multilevel.Fit.ample`; a unit kept by an older version of this
script, or without aa5f504's picks where they are asked for, is trained and answered
again). A 10k unit takes ~35 minutes on two loaded cores, a 1k unit 30–60 s (and as
much again for aa5f504's picks); a rule then takes seconds. Each variant is applied to
the selector's pick (after its own rules) and printed per task type and third of limit
tightness beside the selector, aa5f504 and by hand, with ``selector_benchmark``'s marks
(▼ below by hand, ▽ below aa5f504 beyond noise, clustered by seed):

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
- ``thin-data floor (af21966)``: where the task type's data are thin, the by-hand
  choice unless the model's own pick (recorded per query; units kept by a version of
  this script before the floor was taken out record the pick the recommender handed
  it) is estimated at least as high as that choice's measurement (``…, significantly
  better``: significantly higher, by its mean and standard error, the rule before);
  where they are ample, the pick; ``no thin-data floor (landed)``: the model's own pick;
- ``thin floor, shrunk …`` / ``…, Tweedie …``: the same floor against a reading of the
  by-hand measurement corrected for being the best of many (winner's curse): its mean
  shrunk toward the task type's measured configs or the measured-feasible candidates
  (normal empirical Bayes, :func:`selection.pooling.pool` with one group), or its
  posterior mean under the distribution of true means estimated from the task type's
  measured configs (:func:`selection._selection_bias.deconvolve`);
- ``weaker evidence``: the by-hand choice wherever the pick's sd exceeds that choice's
  measured standard error and the pick is not significantly better (the issue's words:
  "when the model's evidence for a predicted config is weaker than the measured
  alternative's");
- ``margin z=Z`` (``--margins Z ...``): every query answered again by the same model
  with the latency and energy margin at Z standard deviations instead of
  :data:`selection._choice.SAFETY_Z` (the scored candidates rebuilt), with the landed
  rules (``margin z=Z``) and the model's own pick (``…, no thin-data floor``: the same
  since the thin-data floor was taken out).

Then per world, over ``--seeds`` (each a unit; mean ± SE over seeds): each rule's hit on
all queries and on the held-out ones, its paired difference with the landed floor, and
the share of picks whose true p95 is over the latency limit with its paired difference,
beside aa5f504 (skipped with ``--no-baseline``: its picks take a process and a training
of their own) and by hand; then the same over every unit of every world together; a
line says so if the landed floor replayed on the recorded picks differs from the
selector's answers. ``--rules NAME ...`` shows only those rules (and the landed one, which
the differences are paired with): replaying every rule per query takes minutes a world.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/perf/selector_guard.py --worlds sampling \\
        --size 1000 --seeds 0 1 2 [--no-baseline] [--margins 1 2] [--rules NAME ...] \\
        [--tables DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

# Sibling scripts are imported by name: their folder goes first on the path, so this works
# from any folder (`python benchmarks/perf/NAME.py` or `python -m benchmarks.perf.NAME`
# from the repository root, or imported from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import selector_benchmark as bench

from selection import _choice, _evidence_rule, _scoring, recommender
from selection._candidates import candidate_table
from selection._choice import violations
from selection._evidence_rule import EVIDENCE_WEIGHT, MIN_GENERATIONS, measured_feasible
from selection._scoring import scored_candidates
from selection._selection_bias import deconvolve
from selection.frame import validate_training_frame
from selection.model import SelectorModel
from selection.pooling import pool
from selection.recommender import recommend_from_model
from selection.shrinkage import quality_fit
from selection.training import train_selector

Z = NormalDist().inv_cdf(0.95)
COLUMNS = ("quality", "quality_sd", "quality_weight", "measured_quality_mean")


def unit_tables(
    world_name: str,
    size: int,
    seed: int,
    cache: Path,
    data: Path,
    baseline: bool = True,
    margins: tuple[float, ...] = (),
) -> dict:
    """The unit's tables and per-query answers (module docstring), read from ``cache``
    when kept before; the drawn data (and aa5f504's picks) from ``data``, the
    benchmark's cache."""
    path = cache / f"{world_name}-{size}-{seed}.pkl"
    kept = pickle.loads(path.read_bytes()) if path.exists() else None
    answered = kept is not None and "model_pick" in kept["rows"][0]
    answered = answered and all(_margin_key(z) in kept["rows"][0] for z in margins)
    if answered and (not baseline or any(row["old"] is not None for row in kept["rows"])):
        return kept
    world, all_configs, truth = bench._world(world_name)
    frame = validate_training_frame(bench.simulate(world, all_configs, size, seed, data))
    model = train_selector(frame).model
    ample = {task: _ample(model, task) for task in bench.TASK_TYPES}
    asked = bench.queries(truth, seed + 1)
    unit = bench.Unit(world_name, size, seed, False)
    old = (
        bench._baseline_picks(unit, world, frame, asked, bench.Settings(data, False, False))
        if baseline
        else [None] * len(asked)
    )
    hand = bench.hand_table(frame)
    tables, rows = {}, []
    floored: dict = {}
    _record_floor(floored)
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
        floored.clear()
        answer = recommend_from_model(
            model, task, max_latency_s=limit, max_energy_j=energy, input_chars=chars
        )
        pick = answer.choice.config_hash if answer.choice is not None else None
        rows.append(
            {
                "task_type": task,
                "tightness": query.tightness,
                "held_out": query.held_out,
                "limit": limit,
                "energy": energy,
                "by_hand": list(measured_feasible(feasible, limit, None).index),
                "pick": pick,
                "model_pick": floored.get("pick", pick),
                "floor_candidates": floored.get("candidates"),
                "hand": bench.hand_pick(hand, task, limit, energy),
                "old": old[i],
            }
        )
    for z in margins:
        for row, answered in zip(rows, _answers_at(model, world, asked, z, floored), strict=True):
            row.update(answered)
    kept = {
        "tables": {
            task: t[list(COLUMNS)].assign(
                measured_se=t["measured_quality_se"], measured_n=t["measured_n"]
            )
            for task, t in tables.items()
        },
        "truth": truth,
        "rows": rows,
        "ample": ample,
    }
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(kept))
    return kept


def _record_floor(floored: dict) -> None:
    """Make the recommender's thin-data check record into ``floored`` the pick (the
    model's own: no floor holds it where the data are thin) and the by-hand candidates,
    so that floors can be replayed on the same answers."""
    real = _evidence_rule.measured_above

    def recording(table: pd.DataFrame, chosen: object, candidates: pd.DataFrame) -> object:
        floored.update(pick=chosen, candidates=list(candidates.index))
        return real(table, chosen, candidates)

    recommender.measured_above = recording


def _margin_key(z: float) -> str:
    return f"margin z={z:g}"


def _answers_at(
    model: SelectorModel, world: bench.World, asked: pd.DataFrame, z: float, floored: dict
) -> list[dict]:
    """Per query, the pick and the model's own pick (before the thin-data floor) with
    the latency and energy margin at ``z`` standard deviations: the scored candidates
    are rebuilt with it, then the landed margin is put back."""
    landed = _scoring.SAFETY_Z
    _scoring.SAFETY_Z = _choice.SAFETY_Z = z
    model._scored.clear()
    found = []
    try:
        for query in asked.itertuples():
            energy = None if pd.isna(query.max_energy_j) else float(query.max_energy_j)
            floored.clear()
            answer = recommend_from_model(
                model,
                query.task_type,
                max_latency_s=float(query.max_latency_s),
                max_energy_j=energy,
                input_chars=world.prompt_words[query.task_type] * bench.CHARS_PER_WORD,
            )
            pick = answer.choice.config_hash if answer.choice is not None else None
            found.append(
                {_margin_key(z): pick, f"{_margin_key(z)}, own": floored.get("pick", pick)}
            )
    finally:
        _scoring.SAFETY_Z = _choice.SAFETY_Z = landed
        model._scored.clear()
    return found


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


Reference = Callable[[pd.DataFrame, list, str], float]


def raw_mean(table: pd.DataFrame, candidates: list, hand: str) -> float:
    """The by-hand choice's measured mean (af21966's floor)."""
    return float(table.loc[hand, "measured_quality_mean"])


def _measured(table: pd.DataFrame, among: list | None = None) -> pd.DataFrame:
    rows = table if among is None else table.loc[among]
    se = rows["measured_se"]
    ok = rows["measured_quality_mean"].notna() & np.isfinite(se) & (se > 0)
    return rows[ok & (rows["measured_n"].fillna(0) >= MIN_GENERATIONS)]


def shrunk(among_candidates: bool) -> Reference:
    """The by-hand choice's mean shrunk toward the mean of the task type's measured
    configs (or of the measured-feasible candidates) by its standard error, the
    between-config variance by DerSimonian–Laird (:func:`selection.pooling.pool`, one
    group): a normal empirical-Bayes reading of the winner's curse."""

    def reference(table: pd.DataFrame, candidates: list, hand: str) -> float:
        rows = _measured(table, candidates if among_candidates else None)
        if hand not in rows.index or len(rows) < 2:
            return raw_mean(table, candidates, hand)
        mean, _, _ = pool(rows["measured_quality_mean"], rows["measured_se"] ** 2, [0] * len(rows))
        return float(mean[rows.index.get_loc(hand)])

    return reference


def tweedie(table: pd.DataFrame, candidates: list, hand: str) -> float:
    """The by-hand choice's posterior mean under the distribution of true means
    estimated nonparametrically from the task type's measured configs
    (:func:`selection._selection_bias.deconvolve`, Efron's Tweedie correction)."""
    rows = _measured(table)
    if hand not in rows.index or len(rows) < 2:
        return raw_mean(table, candidates, hand)
    found = deconvolve(rows["measured_quality_mean"].to_numpy(), rows["measured_se"].to_numpy())
    return float(found.mean[rows.index.get_loc(hand)])


def thin_measured_floor(reference: Reference = raw_mean, significant: bool = False) -> Rule:
    """Where the task type's data are thin, the by-hand choice unless the model's own
    pick (before the recommender's floor) is estimated at least as high as
    ``reference`` (the by-hand choice's measurement, as af21966 did, or a selection-corrected
    reading of it), or with ``significant`` significantly higher (its mean and standard
    error: the rule before af21966); where they are ample, the pick."""

    def rule(row: dict, table: pd.DataFrame) -> str | None:
        pick, candidates = row["model_pick"], row["floor_candidates"]
        if row["ample"] or pick is None or not candidates:
            return row["pick"]
        hand = str(table.loc[candidates, "measured_quality_mean"].idxmax())
        if hand == pick:
            return pick
        p, h = table.loc[pick], table.loc[hand]
        spread = math.hypot(p["quality_sd"], h["measured_se"]) if significant else 0.0
        return pick if p["quality"] - reference(table, candidates, hand) >= Z * spread else hand

    return rule


def no_thin_floor(row: dict, table: pd.DataFrame) -> str | None:
    return row["model_pick"]


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
    "thin-data floor (af21966)": thin_measured_floor(),
    "thin-data floor, significantly better (before)": thin_measured_floor(significant=True),
    "no thin-data floor (landed)": no_thin_floor,
    "thin floor, shrunk toward the task's measured": thin_measured_floor(shrunk(False)),
    "thin floor, shrunk toward the candidates": thin_measured_floor(shrunk(True)),
    "thin floor, Tweedie over the task's measured": thin_measured_floor(tweedie),
    "weaker evidence": weaker_evidence,
}
LANDED = "no thin-data floor (landed)"
"""The rule the summary's differences are paired with (always shown)."""
Whos = dict[str, "Rule | str"]
"""The rows shown, by name: a rule, or the name of a pick kept per query."""


def outcomes(kept: dict, rule: Rule | str) -> pd.DataFrame:
    """Per query, the limit-respecting hit of ``rule``'s pick (or of the pick kept
    under that name) and whether its true p95 is over the latency limit."""
    truth, found = kept["truth"], []
    for row in kept["rows"]:
        table = kept["tables"][row["task_type"]]
        row = {**row, "ample": kept["ample"][row["task_type"]]}
        pick = row[rule] if isinstance(rule, str) else rule(row, table)
        feasible = bench.truly_feasible(truth, row["task_type"], row["limit"], row["energy"])
        best = feasible["quality"].max() if len(feasible) else None
        if pick is None:
            found.append((best is None, False))
            continue
        true = truth[(truth["task_type"] == row["task_type"]) & (truth["config_hash"] == pick)]
        found.append(
            (
                best is not None
                and pick in set(feasible["config_hash"])
                and float(feasible.set_index("config_hash").loc[pick, "quality"]) >= best - 0.01,
                bool(true["latency_p95"].iloc[0] > row["limit"]),
            )
        )
    return pd.DataFrame(found, columns=["fair_hit", "over"])


def _base(kept: dict) -> pd.DataFrame:
    rows = kept["rows"]
    return pd.DataFrame(
        {
            "seed": kept["seed"],
            "task_type": [r["task_type"] for r in rows],
            "tightness": [r["tightness"] for r in rows],
            "held_out": [r["held_out"] for r in rows],
            "hand_fair_hit": outcomes(kept, "hand")["fair_hit"],
            "old_fair_hit": outcomes(kept, "old")["fair_hit"],
        }
    )


def report(name: str, size: int, kept: list[dict], baseline: bool, whos: Whos) -> None:
    """The cells of ``kept`` (a unit per seed, their queries together) per task type and
    third of limit tightness, for the selector, each rule, aa5f504 and by hand."""
    base = pd.concat([_base(k) for k in kept], ignore_index=True)
    if not baseline:
        base = base.drop(columns="old_fair_hit")
    columns = [*bench.TASK_TYPES, *bench.TIGHTNESS, "all"]
    for who, rule in whos.items():
        hits = pd.concat([outcomes(k, rule)["fair_hit"] for k in kept], ignore_index=True)
        table = base.assign(fair_hit=hits)
        shown = [
            f"{100 * part['fair_hit'].mean():.1f}{bench._marks(part)}"
            for part in (bench._cell(table, c) for c in columns)
        ]
        print(f"| {name} | {size:,} | {who} | {' | '.join(shown)} |")
    others = (("by hand", "hand_fair_hit"),)
    if baseline:
        others = ((bench.BASELINE_COMMIT, "old_fair_hit"), *others)
    for who, column in others:
        shown = [f"{100 * bench._cell(base, c)[column].mean():.1f}" for c in columns]
        print(f"| {name} | {size:,} | {who} | {' | '.join(shown)} |")


def summary(name: str, size: int, kept: list[dict], baseline: bool, whos: Whos) -> pd.DataFrame:
    """Per rule, over the seeds (mean ± SE): limit-respecting hit on all queries and on
    the held-out ones, its paired difference with the landed floor, and the share of
    picks whose true p95 is over the limit with its paired difference; then aa5f504 and
    by hand. Returns the per-seed figures (for :func:`overall`)."""
    per_seed = []
    whos = {**whos, "by hand": "hand"}
    if baseline:
        whos["aa5f504"] = "old"
    for unit in kept:
        held = _base(unit)["held_out"].to_numpy()
        differ = sum(
            RULES[LANDED]({**row, "ample": unit["ample"][row["task_type"]]}, table) != row["pick"]
            for row in unit["rows"]
            for table in [unit["tables"][row["task_type"]]]
        )
        if differ:
            print(f"note: {name} seed {unit['seed']}: the landed floor replayed differs ({differ})")
        for who, rule in whos.items():
            found = outcomes(unit, rule)
            per_seed.append(
                {
                    "who": who,
                    "world": name,
                    "seed": unit["seed"],
                    "all": found["fair_hit"].mean(),
                    "held": found["fair_hit"][held].mean(),
                    "over": found["over"].mean(),
                    "over_held": found["over"][held].mean(),
                }
            )
    table = pd.DataFrame(per_seed)
    _print_paired(name, size, table)
    return table


def overall(size: int, tables: list[pd.DataFrame]) -> None:
    """The rules over every unit of every world: mean ± SE over the units, paired."""
    _print_paired("all worlds", size, pd.concat(tables, ignore_index=True))


def _print_paired(name: str, size: int, per_seed: pd.DataFrame) -> None:
    table = per_seed.set_index(["who", "world", "seed"])[["all", "held", "over", "over_held"]]
    reference = table.loc[LANDED]
    for who in table.index.get_level_values("who").unique():
        own = table.loc[who]
        diff = own - reference
        print(
            f"| {name} | {size:,} | {who} | {len(own)} | {_mean_se(own['all'])} | "
            f"{_mean_se(diff['all'], '+')} | {_mean_se(own['held'])} | "
            f"{_mean_se(diff['held'], '+')} | {_mean_se(own['over'])} | "
            f"{_mean_se(diff['over'], '+')} | {_mean_se(own['over_held'])} |"
        )


def _margin_rules(margins: tuple[float, ...]) -> dict[str, str]:
    """The picks recorded per latency margin (``--margins``), by the names of their rows."""
    found = {}
    for z in margins:
        found[_margin_key(z)] = _margin_key(z)
        found[f"{_margin_key(z)}, no thin-data floor"] = f"{_margin_key(z)}, own"
    return found


def _mean_se(values: pd.Series, sign: str = "") -> str:
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return f"{100 * values.mean():{sign}.1f} ± {100 * se:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=list(bench.WORLDS), required=True)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[bench.REPORT_SEEDS[0]])
    parser.add_argument("--no-baseline", action="store_true", help="skip aa5f504's picks")
    parser.add_argument(
        "--margins", type=float, nargs="*", default=[], help="latency margins z to answer at too"
    )
    parser.add_argument(
        "--rules",
        nargs="+",
        choices=list(RULES),
        metavar="RULE",
        help=f"only these rules (and {LANDED!r}, the reference); default: every rule",
    )
    parser.add_argument("--tables", type=Path, default=Path("/tmp/evalflow-selector-guard"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/evalflow-selector-worlds"))
    args = parser.parse_args()
    rules = {name: RULES[name] for name in RULES if name in {*(args.rules or RULES), LANDED}}
    baseline = not args.no_baseline
    margins = tuple(args.margins)
    whos: Whos = {"selector": "pick", **rules, **_margin_rules(margins)}
    units = {
        name: [
            {
                **unit_tables(name, args.size, seed, args.tables, args.cache, baseline, margins),
                "seed": seed,
            }
            for seed in args.seeds
        ]
        for name in args.worlds
    }
    columns = [*bench.TASK_TYPES, *bench.TIGHTNESS, "all"]
    print(f"| world | generations | who | {' | '.join(columns)} |")
    print("|---|---|---|" + "---|" * len(columns))
    for name, kept in units.items():
        report(name, args.size, kept, baseline, whos)
    print(f"\n{bench.MARKS_LEGEND}\n")
    print(
        "| world | generations | who | units | hit, all | − landed | hit, held out | − landed "
        "| p95 over, all | − landed | p95 over, held out |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    tables = [summary(name, args.size, kept, baseline, whos) for name, kept in units.items()]
    if len(tables) > 1:
        overall(args.size, tables)


if __name__ == "__main__":
    main()
