"""A series watched on the calibrated level: its calibrated cases (``_subset``), what
the watch asks of an item bank (``SubsetEstimates``), each case's weight in the bank's
full-suite estimate (``_weights``), and a quality stream's nights shown as the bank's
estimates (``_estimated``) or, with no usable bank, as the calibrated cases' plain mean
(``_subset_mean``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import pandas as pd

from evaluation.series._series import SeriesPoint
from evaluation.series._stream_verdicts import StreamVerdict


class SubsetEstimates(Protocol):
    """What the watch asks of an item bank for a series watched on the calibrated level
    (``evaluation.itembank.BankEstimates`` answers; the series room does not import the
    item bank room, which imports it)."""

    def weights(
        self, point: SeriesPoint, config: str, metric: str, reference: pd.Series
    ) -> tuple[pd.Series | None, str]:
        """Per case of ``reference`` (the config's per-case means on the calibrated
        cases, over the nights before ``point``): how much the full-suite estimate moves
        per unit of the case's score; None and why where the bank cannot serve."""
        ...

    def estimate(
        self, point: SeriesPoint, config: str, metric: str, scores: pd.Series
    ) -> tuple[float, float, float, str]:
        """The config's full-suite estimate from ``scores`` (per case) on ``point``'s
        night: mean, low, high, and its text (``estimated from 30 of 300 cases (item
        bank v3)``)."""
        ...


def _subset(points: Sequence[SeriesPoint], done: list[int]) -> tuple[str, ...]:
    """The calibrated cases of the last completed run, when it was a calibrated night."""
    if not done or points[done[-1]].watched not in ("calibrated", "escalated"):
        return ()
    return points[done[-1]].calibrated_cases


def _weights(
    banks: SubsetEstimates | None,
    segment: Sequence[SeriesPoint],
    config: str,
    metric: str,
    per_night: Sequence[pd.Series],
) -> tuple[pd.Series | None, str]:
    """Each calibrated case's weight in the full-suite estimate, at the config's level
    over the nights before the last (the last alone on a first night)."""
    if banks is None:
        return None, "no item bank asked for: judged on the calibrated cases' plain mean"
    before = [s for s in per_night[:-1] if s.notna().any()] or [per_night[-1]]
    reference = pd.concat(before).groupby(level=0).mean().dropna()
    if reference.empty:
        return None, ""
    weights, why = banks.weights(segment[-1], config, metric, reference)
    if weights is None:
        return None, f"{why}: judged on the calibrated cases' plain mean"
    return weights, ""


def _estimated(
    verdict: StreamVerdict,
    banks: SubsetEstimates,
    segment: Sequence[SeriesPoint],
    config: str,
    metric: str,
    per_night: Sequence[pd.Series],
    weights: pd.Series,
    ran: Sequence[int],
) -> StreamVerdict:
    """A calibrated night's value shown as the bank's full-suite estimate: the last
    night's with its interval; earlier ones moved from it by the weighted change of
    their cases (the estimate's linear part, the units the night was judged in). A
    night on which the config ran every case (``ran``: its cases; escalated, or before
    the series was calibrated) shows its measured score."""
    last = per_night[-1].dropna()
    if last.empty:
        return verdict
    mean, low, high, text = banks.estimate(segment[-1], config, metric, last)
    nights = list(verdict.nights)
    estimated = [
        p.watched in ("calibrated", "escalated") and n < p.suite_cases
        for p, n in zip(segment, ran, strict=True)
    ]
    for t in range(len(segment)):
        if not estimated[t]:
            continue
        if t == len(segment) - 1:
            nights[t] = replace(nights[t], value=mean, low=low, high=high)
            continue
        shared = per_night[t].dropna().index.intersection(last.index)
        moved = float((weights.reindex(shared) * (per_night[t][shared] - last[shared])).sum())
        nights[t] = replace(nights[t], value=mean + moved, low=None, high=None)
    return replace(verdict, nights=tuple(nights), estimated=text if estimated[-1] else "")


def _subset_mean(
    verdict: StreamVerdict,
    cases: int,
    total: int,
    per_night: Sequence[pd.Series],
    ran: Sequence[int],
) -> StreamVerdict:
    """A quality stream judged on the calibrated cases' plain mean (no usable bank):
    a night that ran more cases (a full one) shown on the same cases (what it was judged
    on), not its whole mean among the others' few-case means; the last value labelled
    inline, as an estimate's is, not only in a note."""
    nights = list(verdict.nights)
    for t, (scores, count) in enumerate(zip(per_night, ran, strict=True)):
        if count > cases and scores.notna().any():
            nights[t] = replace(nights[t], value=float(scores.mean()), low=None, high=None)
    verdict = replace(verdict, nights=tuple(nights))
    last = verdict.last
    if last.value is None or cases >= total:
        return verdict
    interval = (
        f" [{last.low:.3f}, {last.high:.3f}]"
        if last.low is not None and last.high is not None
        else ""
    )
    return replace(
        verdict,
        estimated=f"{last.value:.3f}{interval} subset mean from {cases} of {total} cases",
    )
