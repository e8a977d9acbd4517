"""Two runs of ``selector_benchmark.py --out`` side by side, paired by (world, size, seed).

Per (world, size), over the seeds both runs hold: the limit-respecting hit before and
after (mean ± standard error across seeds), the paired difference after − before, the
hand baseline and after − hand (paired), 0.9 × the own-form ceiling (from whichever run
computed it), and true p95 over the limit before → after. A change is kept only where
no world is worse by more than its noise (the paired difference's SE).

    .venv/bin/python benchmarks/perf/selector_compare.py BEFORE.jsonl AFTER.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def load(path: Path) -> pd.DataFrame:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows).drop_duplicates(["world", "size", "seed"], keep="last")


def mean_se(values: pd.Series) -> str:
    values = 100 * values.astype(float)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():.1f} ± {se:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    joined = load(args.before).merge(
        load(args.after), on=["world", "size", "seed"], suffixes=("_b", "_a")
    )
    print(
        "| world | gens | seeds | before | after | after − before | 0.9 × ceiling | hand "
        "| after − hand | p95 over before → after | hand p95 over |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (world, size), part in joined.groupby(["world", "size"], sort=False):
        ceiling = part["ceiling_b"].where(part["ceiling_b"].notna(), part["ceiling_a"])
        print(
            f"| {world} | {size:,} | {len(part)} | {mean_se(part['fair_hit_b'])} "
            f"| {mean_se(part['fair_hit_a'])} "
            f"| {mean_se(part['fair_hit_a'] - part['fair_hit_b'])} "
            f"| {90 * ceiling.mean():.1f} | {mean_se(part['hand_fair_hit_a'])} "
            f"| {mean_se(part['fair_hit_a'] - part['hand_fair_hit_a'])} "
            f"| {mean_se(part['violates_b'])} → {mean_se(part['violates_a'])} "
            f"| {mean_se(part['hand_violates_a'])} |"
        )


if __name__ == "__main__":
    main()
