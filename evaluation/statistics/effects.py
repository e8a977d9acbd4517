"""Parameter effects in a sweep: rank correlation with a metric, best value, safe range.

For each numeric generation parameter: Spearman's rho between the parameter and the
configs' mean scores (``scipy.stats.spearmanr``'s numbers, from ``_plain``), with a
Fisher-z interval using the Spearman variance 1.06/(n − 3) (Fieller, Hartley & Pearson
1957); the value of the best config; and the recommended values — those whose best
config is not significantly worse than the overall best config in a paired test on the
cases (see :mod:`.paired`), with Holm (default) or Benjamini–Hochberg adjustment over the
values compared. The correlation is marginal over the other parameters of the sweep; it
says nothing causal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.spec._params import STUDIED_PARAMETERS as DEFAULT_PARAMETERS
from evaluation.statistics import _plain
from evaluation.statistics._adjust import Adjustment, adjust_p_values
from evaluation.statistics._cases import CaseTable, case_table, is_constant
from evaluation.statistics.multiple import config_means
from evaluation.statistics.paired import PairedTest, ScoreType, compare_in_table

EXACT_BELOW = 10


@dataclass(frozen=True)
class ParameterEffect:
    """One parameter's effect on one metric; ``None`` means undefined (see note)."""

    parameter: str
    metric: str
    n_configs: int
    rho: float | None
    rho_ci: tuple[float, float] | None
    p_value: float | None
    best_value: float | None
    best_config: str | None
    recommended_values: tuple[float, ...]
    recommended_range: tuple[float, float] | None
    note: str = ""


def parameter_effects(
    scores: pd.DataFrame | CaseTable,
    facts: pd.DataFrame,
    metric: str,
    *,
    score_type: ScoreType,
    higher_is_better: bool = True,
    parameters: Sequence[str] | None = None,
    alpha: float = 0.05,
    adjust: Adjustment = "holm",
    confidence: float = 0.95,
    test: PairedTest = "auto",
    seed: int = 0,
) -> list[ParameterEffect]:
    """Effects of each numeric parameter column of ``facts`` (one row per config, a
    ``config`` column) on ``metric``. Parameters default to :data:`DEFAULT_PARAMETERS`
    present in ``facts``; columns with fewer than two distinct values are reported as
    undefined rather than skipped silently."""
    if "config" not in facts.columns:
        raise ValueError("facts need a 'config' column")
    table = scores if isinstance(scores, CaseTable) else case_table(scores, metric)
    names = (
        [p for p in DEFAULT_PARAMETERS if p in facts.columns]
        if parameters is None
        else list(parameters)
    )
    means = config_means(table).rename("mean")
    merged = facts.set_index(facts["config"].astype(str)).join(means, how="left")
    return [
        _effect(
            table,
            merged,
            p,
            metric=metric,
            score_type=score_type,
            higher_is_better=higher_is_better,
            alpha=alpha,
            adjust=adjust,
            confidence=confidence,
            test=test,
            seed=seed,
        )
        for p in names
    ]


def spearman_interval(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, tuple[float, float] | None, float | None, str]:
    """Spearman rho, its Fisher-z interval tanh(atanh(rho) ± z·sqrt(1.06/(n − 3))), p-value
    and a note. p: ``scipy.stats.spearmanr`` from 10 configs up, a permutation test below.
    rho needs n ≥ 3 and non-constant x and y; the interval needs n ≥ 4 and
    |rho| < 1."""
    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = xv.size
    if n < 3:
        return None, None, None, f"{n} configs: rank correlation undefined (need ≥ 3)"
    if is_constant(xv) or is_constant(yv):
        which = "parameter" if is_constant(xv) else "metric"
        return None, None, None, f"the {which} is constant across configs: rho undefined"
    rho, p = _plain.spearman(xv, yv)
    if n < EXACT_BELOW:
        # spearmanr's t-approximation is poor for few configs: permutation p on the ranks
        # (Pearson r of ranks = rho; scipy.stats.permutation_test's "pairings", every
        # pairing up to 4 configs, 9,999 seeded draws above)
        p = _plain.rank_pairings_p(_plain.rankdata(xv), _plain.rankdata(yv), 9999, seed)
    if n < 4:
        return rho, None, p, "3 configs: Fisher-z interval undefined (need ≥ 4)"
    if abs(rho) >= 1 - 1e-12:
        return rho, None, p, "perfect rank correlation: Fisher-z interval undefined"
    half = float(_plain.norm_ppf(0.5 + confidence / 2)) * math.sqrt(1.06 / (n - 3))
    z = math.atanh(rho)
    return rho, (math.tanh(z - half), math.tanh(z + half)), p, ""


def _effect(
    table,
    merged,
    parameter,
    *,
    metric,
    score_type,
    higher_is_better,
    alpha,
    adjust,
    confidence,
    test,
    seed,
) -> ParameterEffect:
    notes: list[str] = []
    if parameter not in merged.columns:
        return _undefined(parameter, metric, 0, f"no column {parameter!r} in the config facts")
    values = pd.to_numeric(merged[parameter], errors="coerce")
    usable = values.notna() & merged["mean"].notna()
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} config(s) without a value or a score left out")
    values, means = values[usable].astype(float), merged.loc[usable, "mean"].astype(float)
    n = int(values.size)
    if values.nunique() < 2:
        only = "no value" if n == 0 else f"only {values.iloc[0]:g}"
        return _undefined(parameter, metric, n, f"{only} in the sweep: effect undefined")
    rho, ci, p, why = spearman_interval(values, means, confidence=confidence, seed=seed)
    if why:
        notes.append(why)

    ordered = means.sort_values(ascending=not higher_is_better, kind="stable")
    best_config = str(ordered.index[0])
    best_value = float(values[best_config])
    best_per_value = {
        float(v): str(ordered[values[ordered.index] == v].index[0]) for v in sorted(values.unique())
    }
    others = [(v, c) for v, c in best_per_value.items() if v != best_value]
    comps = [
        compare_in_table(
            table,
            best_config,
            c,
            score_type=score_type,
            test=test,
            confidence=confidence,
            seed=seed,
        )
        for _, c in others
    ]
    _, reject = adjust_p_values([c.p_value for c in comps], alpha, adjust)
    recommended = [best_value]
    worse = []
    for (v, _), comp, rej in zip(others, comps, reject, strict=True):
        best_minus = comp.diff if comp.diff is not None else 0.0
        if rej and best_minus != 0 and (best_minus > 0) == higher_is_better:
            worse.append(v)
        else:
            recommended.append(v)
            if comp.p_value is None:
                notes.append(f"{parameter}={v:g}: comparison undefined ({comp.note})")
    recommended.sort()
    inside = [v for v in worse if recommended[0] < v < recommended[-1]]
    if inside:
        notes.append(
            "significantly worse values inside the range: " + ", ".join(f"{v:g}" for v in inside)
        )
    return ParameterEffect(
        parameter=parameter,
        metric=metric,
        n_configs=n,
        rho=rho,
        rho_ci=ci,
        p_value=p,
        best_value=best_value,
        best_config=best_config,
        recommended_values=tuple(recommended),
        recommended_range=(recommended[0], recommended[-1]),
        note="; ".join(notes),
    )


def _undefined(parameter: str, metric: str, n: int, note: str) -> ParameterEffect:
    return ParameterEffect(parameter, metric, n, None, None, None, None, None, (), None, note)
