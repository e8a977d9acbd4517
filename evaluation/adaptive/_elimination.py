"""Which configs a race drops after a round, when it may stop, and with what evidence.

Error control. The guarantee is on the error that matters: P(the truly best config b is
ever eliminated) ≤ α, however often the race looks. The race looks at most R times (the
rounds of its schedule, fixed before any data) and b can only be dropped by a rival j
with a one-sided paired test "j better than b" rejecting at some look. A union bound over
the K − 1 possible rivals and the R looks gives the per-test level α / (R·(K − 1)). The
rival is the current leader, chosen from the data, which is why Holm's step-down (valid
for hypotheses fixed in advance) is not used: the union bound covers any choice of
rival. Fewer than K − 1 terms would need the set of rivals fixed in advance; the
survivors are not (they shrink with the same data). Alpha spent unevenly over the looks
(more where a drop saves more of the suite, none at the last look) was measured and
changed nothing (docs/adaptive-evaluation.md): the critical z moves with log(1/level).
An anytime-valid confidence sequence would be wider (effective z about 4.0 at 24 configs
against 3.46 here): it pays for looks a race with a fixed schedule never takes.
The tests are :func:`evaluation.statistics.compare_scores` (exact McNemar for one 0/1
score per case, clustered t when cases share groups, paired t or Wilcoxon otherwise),
two-sided p halved to the one-sided p in the leader's favour; the reported adjusted p is
min(1, p_one-sided × R × (K − 1)), eliminated ⇔ adjusted p ≤ α.

Stopping within delta. The race stops when, for every survivor j, the one-sided lower
bound on (leader − j) at the look's level is above −delta: no survivor is more than
delta better than the leader, with confidence. If b survives to that look and the leader
is more than delta below it, the bound for the pair (leader, b) failed: one more union
over the same K − 1 rivals and R looks, so P(b still running at a delta stop whose pick
is more than delta below it) ≤ α, and with the elimination error P(a delta stop picks a
config more than delta below b) ≤ 2α (α when the test and the interval are dual, as for
t: both errors are then the same failed bound). Dropping a config whenever its bound
says it is at most delta better than the leader (an ε-good drop at every look) is not
done: a chain of such drops can lose delta at each link, and bounding it needs the union
over all K·(K − 1) ordered pairs, a far stricter level for every test.

Limits (latency, energy): a config is over a limit when its p95 is significantly above
it, an exact binomial test that more than 5% of its generations exceed it, at
α_limit / R per config (only the config's own test can drop it).

Speed: a race compares every survivor with the leader after every round. A pair whose
plain paired z (d̄ over its unclustered SE) is below half the z the level needs is not
tested: only a clustered SE under half the unclustered one could make it significant.
The same plain bound screens the stop: a rival whose plain z for (leader − rival + delta)
is below half the needed z cannot meet it either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # these load on a race's first look, not before a run's first generation
    import pandas as pd

    from evaluation.statistics import PairedComparison, ScoreType

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
    whether the leader is, with confidence, within delta of every config left."""

    leader: str
    means: dict[str, float]
    eliminated: tuple[Elimination, ...]
    within_delta: bool


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
    adjust: float,
    delta: float,
    score_type: ScoreType,
    higher_is_better: bool = True,
) -> Judgement:
    """Compare every survivor with the leader on the cases in ``means`` (rows: cases,
    columns: configs; NaN = unscorable), drop those significantly worse at ``level``
    (one-sided, per test; adjusted p = p × ``adjust``) and say whether the leader is
    within ``delta`` of every one left (one-sided bounds at ``level``)."""
    from scipy import stats

    from evaluation.statistics import compare_scores

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

    lead, se = _plain_lead(table, leader, sign)
    needed = PRESCREEN * float(stats.norm.isf(level))
    eliminated = []
    versus_leader = {}
    for config in survivors:
        if config == leader or not lead[config] >= needed * se[config]:
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
                    p_adjusted=min(1.0, p * adjust),
                    test=result.test,
                )
            )
    left = [c for c in survivors if c not in {e.config for e in eliminated}]
    rivals = [c for c in left if c != leader]
    within = bool(rivals) and all(lead[c] + delta >= needed * se[c] for c in rivals)
    if within:
        within = _within_delta(
            [versus_leader.get(c) or compare(leader, c) for c in rivals], delta, level
        )
    return Judgement(leader, averages, tuple(eliminated), within)


def _plain_lead(
    table: pd.DataFrame, leader: str, sign: float
) -> tuple[dict[str, float], dict[str, float]]:
    """d̄ and its plain SE sd(d)/√n for leader minus each config on the cases both scored
    (SE 0 when the differences have no spread; lead 0 and SE inf when undefined)."""
    x = sign * table.to_numpy(float)
    d = x[:, [table.columns.get_loc(leader)]] - x
    n = np.sum(~np.isnan(d), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(d, axis=0)
        se = np.nanstd(d, axis=0, ddof=1) / np.sqrt(n)
    ok = (n >= 2) & ~np.isnan(mean) & ~np.isnan(se)
    mean, se = np.where(ok, mean, 0.0), np.where(ok, se, np.inf)
    names = list(table.columns)
    return dict(zip(names, mean.tolist(), strict=True)), dict(zip(names, se.tolist(), strict=True))


def _within_delta(versus: Sequence[PairedComparison], delta: float, level: float) -> bool:
    """Every lower bound on (leader − rival) above −delta. Differences that were equal on
    every case have no interval (0/1 scores: Tango's, which does not shrink to a point);
    for them the bound is the exact (Clopper–Pearson) upper limit on the share of cases
    that differ, 1 − level^(1/n), which bounds |mean difference| for scores in [0, 1],
    beside the difference itself."""
    return all(
        (low := _lower_bound(c)) is not None
        and -delta < low
        and (c.sd_diff != 0 or 1 - level ** (1 / c.n_used) < delta)
        for c in versus
    )


def _lower_bound(c: PairedComparison) -> float | None:
    if c.diff_ci is not None:
        return c.diff_ci[0]
    return c.diff if c.sd_diff == 0 else None


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
    from scipy import stats

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
