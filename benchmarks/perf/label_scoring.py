"""Aggregating a classification sweep: CPU time of accuracy vs macro-F1 (a corpus
metric, so each config's interval is a case bootstrap: ~1,000 resamples plus the BCa
jackknife, each a macro-F1). Issue 27 §6: 20 s of CPU to rescore 96 generations with
macro_f1, 6 s with accuracy alone.

Outputs are made up from the classify-intent suite (gold label, another label, or
free text, seeded), ``--configs`` configs × ``--cases`` cases, and both metrics go
through the leaderboard's own aggregation (``evaluation.compare._leaderboard``).

    .venv/bin/python benchmarks/perf/label_scoring.py [--configs 8] [--cases 12]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.compare._leaderboard import aggregate_rows
from evaluation.metrics import get_metric
from evaluation.suites import load_suite

REPO = Path(__file__).resolve().parents[2]


def frames(configs: int, cases: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    suite = load_suite(REPO / "benchmarks/suites/classify-intent.jsonl")
    labels = sorted({c.label for c in suite.cases if c.label})
    rng = np.random.default_rng(seed)
    rows, scores = [], []
    accuracy = get_metric("accuracy")
    for k in range(configs):
        chosen = suite.cases[:cases]
        outputs = []
        for case in chosen:
            roll = rng.random()
            if roll < 0.6:
                outputs.append(f"The answer is {case.label}.")
            elif roll < 0.9:
                outputs.append(f"Probably {rng.choice(labels)}")
            else:
                outputs.append("I cannot tell.")
        correct = accuracy.score(outputs, chosen, labels=suite.labels or None)
        for case, output, value in zip(chosen, outputs, correct, strict=True):
            rows.append(
                {
                    "config_hash": f"c{k}",
                    "case_id": case.id,
                    "sample_index": 0,
                    "status": "ok",
                    "output": output,
                    "latency_s": 0.1,
                    "ttft_s": 0.05,
                    "tokens_per_s": 50.0,
                    "truncated": False,
                }
            )
            scores.append(
                {
                    "config": f"c{k}",
                    "case_id": case.id,
                    "sample_index": 0,
                    "metric": "accuracy",
                    "value": float(value),
                    "group": None,
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(scores), suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generations, scores, suite = frames(args.configs, args.cases, args.seed)
    print(f"{len(generations)} generations ({args.configs} configs x {args.cases} cases)")
    for name in ("accuracy", "macro_f1"):
        metric = get_metric(name)
        metric_scores = scores.assign(metric=name)
        start = time.process_time()
        rows = aggregate_rows(generations, metric_scores, [metric], suite)
        cpu = time.process_time() - start
        row = next(r for r in rows if r["metric"] == name)
        print(
            f"{name:9s} CPU {cpu:7.3f} s   c0: {row['mean']:.3f} [{row['ci_low']:.3f}, "
            f"{row['ci_high']:.3f}] {row['method']}"
        )


if __name__ == "__main__":
    main()
