"""A change to the selector's answering code judged paired: each unit trained once, the
same queries answered before and after.

For each unit of ``selector_benchmark.py`` (world, size, seed: its data and queries) the
selector is trained once with the checkout's code and every query (tuning and held-out
task types, 130 a unit) is answered twice by the same model: "before" with the module
constants ``--before`` sets, "after" with those ``--after`` sets (``MODULE.NAME=VALUE``,
the value a Python literal or ``inf``; what the model caches, its scored candidates,
multilevel fits and suite-mix readings, is dropped between the two: a constant read
while fitting would otherwise answer both sides alike; ``--models DIR`` keeps each
trained model, so a second change is answered on the same models without training
again). A change is written so that one value of its constant gives the code before it;
the two answers then differ only by the change, not by the data, the queries or the
training's randomness, so a difference of a few queries a unit can be seen (issue 50:
`results/issue50.md`, from the 2026-11-27 sections). The by-hand choice is answered
once. The module constants are set in this process only: run it with ``PYTHONPATH`` at
the checkout whose code is measured.

``--out`` gets one JSON line per unit (limit-respecting hits and picks over the true p95
limit for before, after and by hand, per query, the unit's CPU seconds and the load
average); ``--resume`` skips the units it holds (and trains and answers every other unit
the arguments name). ``--summarize FILE ...`` runs nothing: it prints the closing table
over the units those files hold that the arguments name (several candidates' or
processes' files read together). The closing table, over every unit of ``--out`` the
arguments name: per world and over all units, after − before (points of
limit-respecting hit, mean ± SE over units, and per seed), the same for picks over the
p95 limit, beside before and by hand; then per task type and third of limit tightness,
before, after and by hand with ``selector_benchmark``'s ▼ (below by hand beyond noise,
clustered by seed).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/perf/selector_paired.py \\
        --worlds additive cliff --size 1000 --seeds 0 1 2 \\
        --before selection.shrinkage.DEGENERATE_FIT=inf \\
        --after selection.shrinkage.DEGENERATE_FIT=2 --out FILE [--resume] [--cache DIR] \\
        [--models DIR]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/perf/selector_paired.py \\
        --worlds additive cliff --seeds 0 1 2 --summarize FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import math
import os
import pickle
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Sibling scripts are imported by name: their folder goes first on the path, so this works
# from any folder (`python benchmarks/perf/NAME.py` or `python -m benchmarks.perf.NAME`
# from the repository root, or imported from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
import selector_benchmark as bench

from selection.frame import validate_training_frame
from selection.model import SelectorModel
from selection.training import train_selector

SIDES = ("before", "after")
CELLS = (*bench.TASK_TYPES, *bench.TIGHTNESS, "all")


def parse_setting(text: str) -> tuple[str, str, object]:
    """``MODULE.NAME=VALUE`` as (module, name, value); ``inf`` is a float."""
    target, _, raw = text.partition("=")
    module, _, name = target.rpartition(".")
    if not module or not name or not raw:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODULE.NAME=VALUE")
    value = math.inf if raw.strip() in ("inf", "+inf") else ast.literal_eval(raw)
    return module, name, value


@contextlib.contextmanager
def settings(chosen: list[tuple[str, str, object]]) -> Iterator[None]:
    """The module constants set for the block, restored after it."""
    kept = []
    try:
        for module_name, name, value in chosen:
            module = importlib.import_module(module_name)
            kept.append((module, name, getattr(module, name)))
            setattr(module, name, value)
        yield
    finally:
        for module, name, value in reversed(kept):
            setattr(module, name, value)


def _answers(
    world: bench.World,
    model: SelectorModel,
    truth: pd.DataFrame,
    asked: pd.DataFrame,
    hand: pd.DataFrame,
    chosen: list[tuple[str, str, object]],
) -> pd.DataFrame:
    model._scored.clear()  # scored candidates depend on the answering code,
    model._multilevel.clear()  # and so may the fits and suite-mix readings cached here
    with settings(chosen):
        return bench.evaluate(world, model, truth, asked, hand)


def _trained(
    world_name: str, size: int, seed: int, cache: Path | None, models: Path | None
) -> tuple[pd.DataFrame, SelectorModel]:
    """The unit's data and the selector trained on them (kept in ``models`` when given:
    the training code is the checkout's, so a model kept by another checkout is not
    reused unless its training code is the same)."""
    world, all_configs, _ = bench._world(world_name)
    frame = validate_training_frame(bench.simulate(world, all_configs, size, seed, cache))
    path = models / f"{world_name}-{size}-{seed}.pkl" if models else None
    if path is not None and path.exists():
        return frame, pickle.loads(path.read_bytes())
    model = train_selector(frame).model
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_bytes(pickle.dumps(model))
        partial.replace(path)  # another process reading it sees all or nothing
    return frame, model


def run_unit(
    world_name: str, size: int, seed: int, sides: dict, cache: Path | None, models: Path | None
) -> dict:
    """Train once, answer the unit's queries with each side's settings: its record."""
    began = time.process_time()
    world, _, truth = bench._world(world_name)
    frame, model = _trained(world_name, size, seed, cache, models)
    asked = bench.queries(truth, seed + 1)
    hand = bench.hand_table(frame)
    outcome = {side: _answers(world, model, truth, asked, hand, sides[side]) for side in SIDES}
    record: dict = {"world": world_name, "size": size, "seed": seed}
    for side in SIDES:
        record[f"{side}_hit"] = float(outcome[side]["fair_hit"].mean())
        record[f"{side}_over"] = float(outcome[side]["violates"].mean())
    first = outcome["before"]
    record["hand_hit"] = float(first["hand_fair_hit"].mean())
    record["hand_over"] = float(first["hand_violates"].mean())
    record["per_query"] = [
        [task, tight, bool(b), bool(a), bool(h)]
        for task, tight, b, a, h in zip(
            first["task_type"],
            first["tightness"],
            first["fair_hit"],
            outcome["after"]["fair_hit"],
            first["hand_fair_hit"],
            strict=True,
        )
    ]
    record["cpu_s"] = round(time.process_time() - began, 1)
    record["load"] = round(os.getloadavg()[0], 1)
    record["settings"] = {side: [f"{m}.{n}={v}" for m, n, v in sides[side]] for side in SIDES}
    return record


def _mean_se(values: pd.Series) -> str:
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return f"{100 * values.mean():+.2f} ± {100 * se:.2f}"


def print_summary(records: list[dict]) -> None:
    """Per world and over all units: before, after − before (and per seed), by hand,
    picks over the p95 limit after − before; then the cells."""
    units = pd.DataFrame(records)
    units["diff"] = units["after_hit"] - units["before_hit"]
    units["over_diff"] = units["after_over"] - units["before_over"]
    print(
        "\n| world | units | before | after − before | per seed | by hand "
        "| p95 over, after − before |\n|---|---|---|---|---|---|---|"
    )
    groups = [*units.groupby("world"), ("**all**", units)]
    for name, part in groups:
        part = part.sort_values("seed")
        seeds = ", ".join(f"{100 * d:+.1f}" for d in part["diff"]) if name != "**all**" else ""
        print(
            f"| {name} | {len(part)} | {100 * part['before_hit'].mean():.1f} "
            f"| {_mean_se(part['diff'])} | {seeds} | {100 * part['hand_hit'].mean():.1f} "
            f"| {_mean_se(part['over_diff'])} |"
        )
    rows = [
        [r["world"], r["seed"], *q] for r in records for q in r["per_query"]
    ]  # world, seed, task, tightness, before, after, hand
    table = pd.DataFrame(
        rows, columns=["world", "seed", "task_type", "tightness", "before", "after", "hand"]
    )
    print(f"\n| world | who | {' | '.join(CELLS)} |\n|---|---|" + "---|" * len(CELLS))
    for name, part in table.groupby("world"):
        for who in ("before", "after", "hand"):
            shown = []
            for cell in CELLS:
                chunk = bench._cell(part, cell)
                text = f"{100 * chunk[who].mean():.1f}"
                if who != "hand":
                    diff = (chunk[who].astype(float) - chunk["hand"].astype(float)).to_numpy()
                    text += "▼" if bench.below_beyond_noise(diff, chunk["seed"].to_numpy()) else ""
                shown.append(text)
            print(f"| {name} | {who} | {' | '.join(shown)} |")
    print("\n▼: below by hand beyond noise, clustered by seed (selector_benchmark's test).")
    print(
        f"CPU {units['cpu_s'].sum():.0f} s over {len(units)} units; load {units['load'].min()}"
        f"–{units['load'].max()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=bench.FAMILY, required=True)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--before", type=parse_setting, nargs="*", default=[])
    parser.add_argument("--after", type=parse_setting, nargs="*", default=[])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summarize", type=Path, nargs="+", help="print these files' table")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--models", type=Path)
    args = parser.parse_args()
    wanted = set(args.worlds), set(args.seeds)
    if args.summarize:
        print_summary(_named([_records(path) for path in args.summarize], wanted, args.size))
        return
    if args.out is None:
        parser.error("--out is required unless --summarize is given")
    kept = (
        [json.loads(line) for line in args.out.read_text().splitlines()]
        if (args.resume and args.out.exists())
        else []
    )
    done = {(r["world"], r["size"], r["seed"]) for r in kept}
    sides = {"before": args.before, "after": args.after}
    if not args.resume:
        args.out.write_text("")
    for seed in args.seeds:
        for world in args.worlds:
            if (world, args.size, seed) in done:
                continue
            record = run_unit(world, args.size, seed, sides, args.cache, args.models)
            with args.out.open("a") as out:
                out.write(json.dumps(record) + "\n")
            print(
                f"{world} {seed}: before {100 * record['before_hit']:.1f}, after "
                f"{100 * record['after_hit']:.1f}, by hand {100 * record['hand_hit']:.1f}; "
                f"{record['cpu_s']} s CPU, load {record['load']}",
                flush=True,
            )
            kept.append(record)
    print_summary(_named([kept], wanted, args.size))


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _named(files: list[list[dict]], wanted: tuple[set, set], size: int) -> list[dict]:
    """The records of the units the arguments name (worlds, seeds, size), each once: a
    unit held by several files is taken from the last."""
    found = {
        (r["world"], r["seed"]): r
        for records in files
        for r in records
        if r["world"] in wanted[0] and r["seed"] in wanted[1] and r["size"] == size
    }
    return list(found.values())


if __name__ == "__main__":
    main()
