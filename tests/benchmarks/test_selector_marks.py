"""The selector benchmark's "below beyond noise" cell marks (benchmarks/perf/
selector_benchmark.py, ``_marks``) are calibrated: a seed draws all of a unit's data and
trains one selector, so its queries' outcomes move together, and a chooser exactly level
with the baseline must be marked at about the nominal one-sided 2.5% (issue 50). Marking
per query, with the seeds' queries taken as independent, marked such a chooser in about
one cell in eight (`benchmarks/perf/results/issue50.md`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEEDS, TASKS, PER_TASK = 3, 5, 26  # as at 1k: 3 report seeds, 130 queries a seed


def unit_hits(rng: np.random.Generator, seeds: int, shift: float) -> pd.DataFrame:
    """Per query, two choosers' limit-respecting hits: each seed and each (seed, task
    type) block moves a chooser's hit probability for all its queries at once (one data
    draw, one trained model); ``shift`` lowers the selector's log-odds everywhere."""
    rows = []
    for seed in range(seeds):
        seed_effect = rng.normal(0, 0.3, size=2)
        for task in range(TASKS):
            base = rng.normal(-1.2, 0.5)
            block = rng.normal(0, 0.5, size=2)
            odds = base + seed_effect + block - np.array([shift, 0.0])
            p = 1 / (1 + np.exp(-odds))
            hits = rng.random((PER_TASK, 2)) < p
            rows += [(seed, task, a, b) for a, b in hits]
    return pd.DataFrame(rows, columns=["seed", "task_type", "fair_hit", "hand_fair_hit"])


def marked_share(bench, seeds: int, shift: float, replications: int, tasks: bool = True) -> float:
    """Share of the selector's cells marked below by hand over ``replications`` draws:
    the "all" cell and (``tasks``) each task type's cell."""
    rng = np.random.default_rng(50)
    marks = []
    for _ in range(replications):
        table = unit_hits(rng, seeds, shift)
        parts = [table, *(part for _, part in table.groupby("task_type"))] if tasks else [table]
        marks += ["▼" in bench._marks(part) for part in parts]
    return float(np.mean(marks))


def test_a_chooser_level_with_by_hand_is_marked_at_about_the_nominal_rate(bench) -> None:
    share = marked_share(bench, SEEDS, shift=0.0, replications=300)
    assert 0.005 <= share <= 0.04  # nominal 2.5% one-sided; per query it was 0.12


def test_a_chooser_truly_below_by_hand_is_marked(bench) -> None:
    # 13 points below by hand's 25% hits on all queries (the mean over seeds 4.4 of its
    # standard errors below), over 8 seeds
    assert marked_share(bench, 8, shift=1.0, replications=60, tasks=False) >= 0.8


def test_one_seed_is_never_marked(bench) -> None:
    part = pd.DataFrame({"seed": 0, "fair_hit": [0] * 30, "hand_fair_hit": [1] * 30})
    assert bench._marks(part) == ""
    two = pd.concat([part, part.assign(seed=1)])
    assert bench._marks(two) == "▼"  # every seed below by the same amount
