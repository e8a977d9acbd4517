"""CPU of a comparison's statistics on a 100,000-generation experiment: ``compare_many``
over every pair of CONFIGS configs on CASES cases (one sample each), for a 0/1 metric
(exact McNemar, with Tango's interval for the difference since it replaced the t
interval) and for a continuous one (paired t), cases without groups and with 40 groups.
Run it with one checkout's code, then another's, for before/after figures:

    PYTHONPATH=/path/to/checkout .venv/bin/python benchmarks/perf/paired_intervals.py \
        [--configs 20] [--cases 5000] [--runs 3]

Prints the process's CPU time (user + sys) per variant, the median of the runs, with the
load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from evaluation.statistics import compare_many


def rows(n_configs: int, n_cases: int, binary: bool, grouped: bool) -> pd.DataFrame:
    """Long score rows: config k right with probability 0.45 + 0.02·k (0/1), or a
    score around that (continuous), cases sharing a difficulty."""
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 0.15, n_cases)
    frames = []
    for k in range(n_configs):
        p = np.clip(0.45 + 0.02 * k + difficulty, 0.01, 0.99)
        value = (rng.random(n_cases) < p).astype(float) if binary else p + rng.normal(0, 0.1)
        frames.append(
            pd.DataFrame(
                {
                    "config": f"config-{k:02d}",
                    "case_id": [f"c{i:05d}" for i in range(n_cases)],
                    "sample_index": 0,
                    "group": [f"g{i % 40}" for i in range(n_cases)] if grouped else None,
                    "metric": "m",
                    "value": value,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{options.configs} configs x {options.cases} cases, every pair; CPU s per variant")
    for binary in (True, False):
        for grouped in (False, True):
            frame = rows(options.configs, options.cases, binary, grouped)
            score_type = "binary" if binary else "continuous"
            spent = []
            for _ in range(options.runs):
                started = cpu()
                multi = compare_many(frame, "m", score_type=score_type)
                spent.append(cpu() - started)
            tests = sorted({ac.comparison.test for ac in multi.comparisons})
            print(
                f"{score_type:<10} {'40 groups' if grouped else 'no groups':<9} "
                f"{statistics.median(spent):6.2f} s  ({', '.join(tests)}; "
                f"{len(multi.comparisons)} pairs)"
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}; {time.strftime('%H:%M UTC')}")


if __name__ == "__main__":
    main()
