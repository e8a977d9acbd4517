"""Blinded pairs for side-by-side review: which cases, which sides, seeded.

For every two configs under review, the cases where both have a successful generation
of the same sample are candidates; up to ``per_pair`` of them are drawn at random, each
pair's sides (which config is "A") are drawn at random, and the pairs of all config
pairs are shuffled together so a rater cannot tell the config pair from the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from evaluation.labels import config_named


@dataclass(frozen=True)
class PairDraw:
    """One drawn pair: ``generation_a`` is shown as "A"."""

    case_uid: str
    generation_a: int
    generation_b: int
    config_a: str
    config_b: str


def resolve_configs(configs: pd.DataFrame, names: Sequence[str], experiment: str) -> list[str]:
    """Config hashes for ``names``: each a name an output shows for a config (the hash,
    its label, its shown label, a unique hash prefix), refused in the words ``compare``
    uses (``evaluation.labels.config_named``). ``configs`` has the columns ``hash`` and
    ``label`` (one row per config of ``experiment``)."""
    hashes = configs["hash"].astype(str).tolist()
    labels = configs["label"].astype(str).tolist()
    return [config_named(name, hashes, labels, experiment) for name in names]


def draw_pairs(
    generations: pd.DataFrame,
    configs: Sequence[str],
    *,
    per_pair: int | None = 10,
    seed: int = 0,
) -> list[PairDraw]:
    """Blinded pairs from ``generations`` (columns id, config_hash, case_uid,
    sample_index, status) for every two of ``configs``; ``per_pair=None`` takes every
    shared case. The same inputs and seed always give the same pairs."""
    if len(set(configs)) < 2:
        raise ValueError("side-by-side review needs at least two different configs")
    ok = generations[generations["status"] == "ok"]
    by_key = {
        config: part.sort_values(["case_uid", "sample_index"]).drop_duplicates(
            "case_uid", keep="first"
        )
        for config, part in ok.groupby("config_hash")
    }
    rng = np.random.default_rng(seed)
    draws: list[PairDraw] = []
    for x, y in combinations(dict.fromkeys(configs), 2):
        if x not in by_key or y not in by_key:
            continue
        both = by_key[x].merge(by_key[y], on=["case_uid", "sample_index"], suffixes=("_x", "_y"))
        both = both.sort_values("case_uid").reset_index(drop=True)
        take = len(both) if per_pair is None else min(per_pair, len(both))
        for i in rng.permutation(len(both))[:take]:
            row = both.iloc[int(i)]
            gx, gy = int(row["id_x"]), int(row["id_y"])
            if rng.random() < 0.5:
                draws.append(PairDraw(str(row["case_uid"]), gx, gy, x, y))
            else:
                draws.append(PairDraw(str(row["case_uid"]), gy, gx, y, x))
    return [draws[int(i)] for i in rng.permutation(len(draws))]


def default_configs(leaderboard: pd.DataFrame, metric: str | None, n: int = 2) -> list[str]:
    """The ``n`` best configs by ``metric`` (leaderboard order when it is None): what a
    reviewer most needs to tell apart."""
    table = leaderboard
    if metric is not None and metric in table.columns:
        table = table.sort_values(metric, ascending=False, kind="stable", na_position="last")
    return table["config"].astype(str).head(n).tolist()
