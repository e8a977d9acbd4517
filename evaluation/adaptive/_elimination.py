"""Which configs a race drops after a round, and with what evidence.

Error control. The guarantee is on the error that matters: P(the truly best config is
ever eliminated) ≤ α, however often the race looks. The race looks at most R times (the
rounds of its schedule, fixed before any data) and the truly best config b can only be
dropped by a rival j with a one-sided paired test "j better than b" rejecting at some
look. A union bound over the K − 1 possible rivals and the R looks gives the per-test
level α / (R·(K − 1)) (alpha spent evenly over the looks, Bonferroni over rivals). The
rival is the current leader, chosen from the data, which is why Holm's step-down (valid
for hypotheses fixed in advance) is not used here: the union bound covers any choice of
rival. The tests are :func:`evaluation.statistics.compare_scores` (exact McNemar for one
0/1 score per case, clustered t when cases share groups, paired t or Wilcoxon otherwise),
two-sided p halved to the one-sided p in the leader's favour; the reported adjusted p is
min(1, p_one-sided × R × (K − 1)), eliminated ⇔ adjusted p ≤ α.

Limits (latency, energy): a config is over a limit when its p95 is significantly above
it, an exact binomial test that more than 5% of its generations exceed the limit, at
α_limit / R per config (only the config's own test can drop it).

Equivalence: all survivors are within ``delta`` of each other when every pairwise
interval at confidence 1 − 2·level (TOST at the same per-test level) lies inside
(−delta, delta) (configs identical on every case so far: see :func:`_within`).

Speed: a race compares every survivor with the leader after every round. A pair whose
plain paired z (d̄ over its unclustered SE) is below half the z the level needs is not
tested: only a clustered SE under half the unclustered one could make it significant.
A pair whose difference is already ``delta`` or more cannot be equivalent either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from evaluation.statistics import PairedComparison, ScoreType, compare_scores

QUANTILE = 0.95
PRESCREEN = 0.5


@dataclass(frozen=True)
class Elimination:
    """One config dropped after a round: by the leader (``reason="worse"``) with the
    paired evidence, or by a limit (``reason="limit"``, ``by`` names it)."""

    config: str
    reason: Literal["worse", "limit"]
    by: str
    n_cases: int
    diff: float | None
    ci: tuple[float, float] | None
    p_value: float
    p_adjusted: float
    test: str


@dataclass(frozen=True)
class Judgement:
    """What one look decided: the leader, the configs dropped, the means it saw, and
    whether the survivors are all within delta of each other."""

    leader: str
    means: dict[str, float]
    eliminated: tuple[Elimination, ...]
    equivalent: bool


def one_sided(comparison: PairedComparison) -> float:
    """One-sided p for "A better than B" from the two-sided test (symmetric tests)."""
    if comparison.p_value is None or comparison.diff is None:
        return 1.0
    half = comparison.p_value / 2
    return half if comparison.diff > 0 else 1 - half


def judge(
    means: pd.DataFrame,
    survivors: Sequence[str],
    *,
    groups: pd.Series | None,
    level: float,
    looks_times_rivals: int,
    delta: float,
    score_type: ScoreType,
    higher_is_better: bool = True,
) -> Judgement:
    """Compare every survivor with the leader on the cases in ``means`` (rows: cases,
    columns: configs; NaN = unscorable) and drop those significantly worse at ``level``
    (one-sided, per test). ``looks_times_rivals`` is R·(K − 1), for the adjusted p."""
    sign = 1.0 if higher_is_better else -1.0
    table = means[list(survivors)]
    averages = {c: float(np.nanmean(table[c])) for c in survivors}
    leader = max(survivors, key=lambda c: (sign * averages[c], -survivors.index(c)))
    g = None if groups is None else groups.reindex(table.index).to_numpy(dtype=object)
    confidence = 1 - 2 * level

    def compare(a: str, b: str) -> PairedComparison:
        x, y = table[a].to_numpy(float), table[b].to_numpy(float)
        if not higher_is_better:
            x, y = -x, -y
        return compare_scores(
            x, y, groups=g, score_type=score_type, confidence=confidence, a=a, b=b
        )

    plain_z = _plain_z(table, leader, sign)
    needed = PRESCREEN * float(stats.norm.isf(level))
    eliminated = []
    versus_leader = {}
    for config in survivors:
        if config == leader or plain_z[config] < needed:
            continue
        result = compare(leader, config)
        versus_leader[config] = result
        p = one_sided(result)
        if p <= level:
            eliminated.append(
                Elimination(
                    config=config,
                    reason="worse",
                    by=leader,
                    n_cases=result.n_used,
                    diff=result.diff,
                    ci=result.diff_ci,
                    p_value=p,
                    p_adjusted=min(1.0, p * looks_times_rivals),
                    test=result.test,
                )
            )
    left = [c for c in survivors if c not in {e.config for e in eliminated}]
    equivalent = len(left) > 1 and all(abs(averages[c] - averages[leader]) < delta for c in left)
    if equivalent:
        rivals = [c for c in left if c != leader]
        equivalent = _within(
            [versus_leader.get(c) or compare(leader, c) for c in rivals], delta, level
        )
    if equivalent:
        equivalent = _within([compare(a, b) for a, b in combinations(left, 2)], delta, level)
    return Judgement(leader, averages, tuple(eliminated), equivalent)


def _plain_z(table: pd.DataFrame, leader: str, sign: float) -> dict[str, float]:
    """d̄ / (sd(d)/√n) of leader minus each config on the cases both scored (inf when
    the differences have no spread but a positive mean; 0 when undefined)."""
    x = sign * table.to_numpy(float)
    d = x[:, [table.columns.get_loc(leader)]] - x
    n = np.sum(~np.isnan(d), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(d, axis=0)
        sd = np.nanstd(d, axis=0, ddof=1)
        z = np.where(sd > 0, mean / (sd / np.sqrt(n)), np.where(mean > 0, np.inf, 0.0))
    z = np.where((n >= 2) & ~np.isnan(z), z, 0.0)
    return dict(zip(table.columns, z.tolist(), strict=True))


def _within(comparisons: Sequence[PairedComparison], delta: float, level: float) -> bool:
    """Every interval inside (−delta, delta). Differences that were zero on every case
    give a degenerate interval; for them the bound is the exact (Clopper–Pearson) upper
    limit on the share of cases that differ, 1 − level^(1/n), which bounds |mean
    difference| for scores in [0, 1]."""
    return all(
        c.diff_ci is not None
        and -delta < c.diff_ci[0]
        and c.diff_ci[1] < delta
        and (c.sd_diff != 0 or 1 - level ** (1 / c.n_used) < delta)
        for c in comparisons
    )


def over_limit(
    values: Mapping[str, Sequence[float]],
    survivors: Sequence[str],
    *,
    name: str,
    limit: float,
    level: float,
    looks: int,
) -> tuple[Elimination, ...]:
    """Survivors whose p95 of ``name`` is significantly above ``limit``: one-sided exact
    binomial test of P(value > limit) > 5% on their observed values (NaN left out)."""
    dropped = []
    for config in survivors:
        x = np.asarray(values.get(config, ()), dtype=float)
        x = x[~np.isnan(x)]
        if x.size == 0:
            continue
        over = int(np.sum(x > limit))
        p = float(stats.binomtest(over, x.size, 1 - QUANTILE, alternative="greater").pvalue)
        if p <= level:
            dropped.append(
                Elimination(
                    config=config,
                    reason="limit",
                    by=f"{name} p95 > {limit:g}",
                    n_cases=int(x.size),
                    diff=float(np.quantile(x, QUANTILE)) - limit,
                    ci=None,
                    p_value=p,
                    p_adjusted=min(1.0, p * looks),
                    test="exact binomial (share over the limit > 5%)",
                )
            )
    return tuple(dropped)
