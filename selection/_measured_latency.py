"""Which candidates a latency limit admits by their own measurements where the margin
refuses them, and what the answer says of such a pick.

The margin (:func:`selection._scoring._with_margin`) keeps true p95 violations rare,
but where it refuses every candidate while measured configs meet the limit by their own
calls, answering "nothing meets the limit" would contradict the leaderboard: those
configs are candidates. Judged per answer (whether anything cleared the margin) that
made feasibility depend on the limit backwards: a newcomer's gemma config, measured at
p95 5.82 s over 36 calls (60% quality), was picked at ``--max-latency 6`` by its own
measurements and refused at 7 and 7.5 (7.67 s with margin) because another config
(41.8%) met 7 with its margin. Judged per config, a config is admitted by its own
measurements at every limit its measurements meet (``own_figure``) when no candidate
meets, with its margin, the figure its measurements need: exactly the configs the
per-answer rule admitted at some tighter limit, so a config feasible at one limit stays
feasible at every looser one and the set of candidates only grows as a limit loosens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.statistics.precision import told_apart
from selection._candidates import params_label
from selection._choice import LATENCY_REASON, SAFETY_Z
from selection._evidence_rule import MIN_GENERATIONS, measured_feasible
from selection.aggregate import QUANTILE_NOISE, unbiased_quantile

PER_CONFIG = True
"""Judge the own-measurements admission per config (above); False: per answer, only
where no candidate clears the margin (the rule before 2026-11-27, kept for
``benchmarks/perf/selector_paired.py``)."""

OWN_CALLS_CAP = True
"""A measured config's p95 with margin is at most its own calls' alone with the same
margin (:func:`own_calls_p95`); False: the estimate combined with the model's prediction,
or pooled with its sampling twins, holds it however far above its own calls it reads
(the code before; issue 50's results, "a pooled p95 its own calls reject")."""

MEASURED_LATENCY_NOTE = (
    "none meets the latency limit by its own measurements either: that takes the "
    "Harrell–Davis p95 of a config's calls (above the leaderboard's interpolated p95 on a "
    "long tail) and its median × its model's measured p95 / median both within the limit"
)


def measured_latency_note(table: pd.DataFrame, max_latency_s: float) -> str:
    """``MEASURED_LATENCY_NOTE``, and where configs' own p95 meets the limit but their
    median × their tail ratio does not, the best measured of them with where that ratio
    comes from (``latency_tail_source``): a newcomer's config passed 2.5 s by its own
    calls one day and failed 3 s the next, its model's ratio raised by other configs'
    nights, and the answer did not say which runs had set it."""
    mean_p95 = measured_feasible(table, max_latency_s, None)
    if "latency_tail_ratio" not in mean_p95:
        return MEASURED_LATENCY_NOTE
    tail = mean_p95["measured_latency_p50"] * mean_p95["latency_tail_ratio"]
    held = mean_p95[tail > max_latency_s]
    if held.empty:
        return MEASURED_LATENCY_NOTE
    best = held["measured_quality_mean"].astype(float).fillna(-1.0).idxmax()
    row = held.loc[best]
    p95 = told_apart(float(row["measured_latency_p95"]), max_latency_s, figures=True)[0]
    median = told_apart(float(tail[best]), max_latency_s, figures=True)[0]
    source = str(row.get("latency_tail_source", "") or "")
    whose = (
        "its own calls' p95 / median bound"
        if bool(row.get("latency_tail_own", False))
        else f"its model's measured p95 / median{f' ({source})' if source else ''}"
    )
    more = len(held) - 1
    return (
        f"{MEASURED_LATENCY_NOTE}: {params_label(row)} meets it by its own p95 ({p95} s over "
        f"{int(row['measured_n'])} calls) but not by its median × "
        f"{float(row['latency_tail_ratio']):.2f} ({median} s), {whose}"
        + (f"; {more} more {'is' if more == 1 else 'are'} held so" if more else "")
    )


def feasible_candidates(
    table: pd.DataFrame,
    found: list[tuple[str, ...]],
    max_latency_s: float | None,
    min_quality: float | None,
) -> tuple[pd.DataFrame, pd.Index]:
    """The rows of ``table`` the choice is made among (``found``: each row's refusals,
    :func:`selection._choice.violations`): those meeting every limit with margin and
    those admitted by their own measurements (the module docstring); and the index of
    the latter."""
    clear = pd.Series([not reasons for reasons in found], index=table.index)
    own = _met_by_measurements(table, found, max_latency_s, min_quality)
    if PER_CONFIG:
        own = own[own_figure(own) < margin_floor(table, found)]
    elif clear.any():
        own = own.iloc[:0]
    return table[clear | table.index.isin(own.index)], own.index


def own_calls_p95(table: pd.DataFrame) -> pd.Series:
    """Per row, the p95 its own calls alone meet with the margin the limits use: their
    Harrell–Davis p95 freed of its small-sample bias, raised by ``SAFETY_Z`` standard
    errors of that log quantile; NaN below ``MIN_GENERATIONS`` calls. A pooled figure
    above it (the prediction combined with it, or its sampling twins') is one its own
    calls reject at the margin: a newcomer's config measured at p95 6.4 s read about
    12 s, pooled with its sampling twin (11.0 s), and was refused at
    ``--max-latency 10``."""
    n = table["measured_n_latency"].astype(float)
    log_var = table["measured_log_latency_var"].astype(float)
    p95 = table["measured_latency_p95"].astype(float)
    value = unbiased_quantile(p95, log_var, n, "latency_p95")
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(QUANTILE_NOISE["latency_p95"] * log_var / n)
    return (value * np.exp(SAFETY_Z * se)).where(n >= MIN_GENERATIONS)


def held_to_own_calls(table: pd.DataFrame, safe: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``safe`` (each row's p95 with margin) lowered to :func:`own_calls_p95` where that
    is lower, and where it was (both all of ``safe`` and False without
    ``OWN_CALLS_CAP``)."""
    if not OWN_CALLS_CAP or "measured_n_latency" not in table:
        return safe, pd.Series(False, index=safe.index)
    own = own_calls_p95(table)
    lower = (own < safe).fillna(False).astype(bool)
    return safe.where(~lower, own), lower


def own_figure(table: pd.DataFrame) -> pd.Series:
    """The lowest latency limit each row's own measurements meet: its measured p95, or
    its measured median × its model's tail ratio where that is larger."""
    p95 = table["measured_latency_p95"].astype(float)
    if "latency_tail_ratio" not in table:
        return p95
    return np.fmax(p95, table["measured_latency_p50"] * table["latency_tail_ratio"])


def margin_floor(table: pd.DataFrame, found: list[tuple[str, ...]]) -> float:
    """The lowest latency limit any candidate meets with its margin while meeting the
    other limits (inf where none does): below it nothing clears the margin."""
    if "latency_p95_safe" not in table:
        return float("inf")
    others = [all(r.startswith(LATENCY_REASON) for r in reasons) for reasons in found]
    figures = table.loc[others, "latency_p95_safe"].astype(float).dropna()
    return float(figures.min()) if len(figures) else float("inf")


def meeting_by_measurements(table: pd.DataFrame, max_latency_s: float) -> pd.DataFrame:
    """Rows whose own measurements meet the latency limit: measured p95 and measured
    median × the model's measured tail ratio both within it."""
    kept = measured_feasible(table, max_latency_s, None)
    if "latency_tail_ratio" not in kept:
        return kept
    tail = kept["measured_latency_p50"] * kept["latency_tail_ratio"]
    return kept[~(tail > max_latency_s)]


def met_by_measurements_note(
    row: pd.Series, meeting: int, max_latency_s: float, any_clear: bool
) -> str:
    """Says how close the pick's own measurements came to the limit (with no margin
    left, a pick between configs that meet it so can rest on milliseconds) and, where
    other candidates cleared the margin (``any_clear``), why it stands among them."""
    measured_p95 = float(row["measured_latency_p95"])
    figures = [f"p95 {told_apart(measured_p95, max_latency_s, figures=True)[0]} s"]
    tail = float(row.get("measured_latency_p50", np.nan)) * float(
        row.get("latency_tail_ratio", np.nan)
    )
    if np.isfinite(tail):
        figures.append(
            f"median × its model's tail ratio {told_apart(tail, max_latency_s, figures=True)[0]} s"
        )
    measured = (
        "meets it by its own measurements, within their noise: "
        f"{' and '.join(figures)} over {int(row['measured_n'])} calls, against {max_latency_s:g} s"
    )
    if any_clear:
        safe, bound = told_apart(float(row["latency_p95_safe"]), max_latency_s, figures=True)
        need = max(measured_p95, tail) if np.isfinite(tail) else measured_p95
        return (
            f"its p95 with margin ({safe} s) is over the {bound} s limit, but it {measured}; "
            f"no configuration is estimated to meet {need:.3g} s, the limit its measurements "
            "meet, with its margin, so it is a candidate at that limit and at every looser one"
        )
    others = meeting - 1
    among = f"; {others} other configuration{'s' * (others != 1)} met it so too" if others else ""
    return (
        "no configuration is estimated to meet the latency limit with its margin; "
        f"this one {measured}{among}"
    )


def _met_by_measurements(
    table: pd.DataFrame,
    found: list[tuple[str, ...]],
    max_latency_s: float | None,
    min_quality: float | None,
) -> pd.DataFrame:
    """Candidates kept out only by the latency margin whose own measurements meet the
    limits (``measured_feasible``), their measured median times the model's measured
    tail ratio included: what a user reading the leaderboard would pick from."""
    only_latency = [
        all(reason.startswith(LATENCY_REASON) for reason in reasons) and bool(reasons)
        for reasons in found
    ]
    kept = measured_feasible(table[only_latency], None, min_quality)
    return kept if max_latency_s is None else meeting_by_measurements(kept, max_latency_s)
