"""The item bank in a series watched on the calibrated level: what the series watch
(``evaluation.series.watch_series``) asks of it, per night and config: how much each
calibrated case moves the full-suite estimate (the units a night's change is judged in)
and the night's estimate with its interval. The series room does not import this one
(this one imports it); its callers hand a :class:`BankEstimates` to the watch."""

from __future__ import annotations

import pandas as pd
from sqlmodel import Session

from evaluation.itembank._stored_bank import (
    PIPELINE_REASON,
    Bank,
    current_bank,
    model_family,
    why_not,
)
from evaluation.series import SeriesPoint
from evaluation.storage.models import ConfigPipeline, SuiteRow


class BankEstimates:
    """Each suite's newest bank on a metric, read once, for the nights of a series."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._banks: dict[tuple[str, str], Bank | None] = {}

    def usable(self, point: SeriesPoint, config: str, metric: str) -> tuple[Bank | None, str]:
        """The bank for ``config`` on ``point``'s night, or None and why not (no bank on
        the metric, other suite content, a model family never calibrated, a pipeline)."""
        key = (point.suite, metric)
        if key not in self._banks:
            self._banks[key] = current_bank(self._session, point.suite, metric)
        bank = self._banks[key]
        if bank is None:
            return None, f"no item bank on {metric!r} for suite {point.suite!r}"
        if self._session.get(ConfigPipeline, config) is not None:
            return None, PIPELINE_REASON
        digest = point.suite_digest.split("+")[0]
        if not digest:
            suite = self._session.get(SuiteRow, point.suite)
            digest = suite.fingerprint if suite else ""
        why = why_not(bank, digest, [model_family(point.config_models.get(config, ""))])
        return (None, why) if why else (bank, "")

    def weights(
        self, point: SeriesPoint, config: str, metric: str, reference: pd.Series
    ) -> tuple[pd.Series | None, str]:
        """Per case of ``reference`` the bank knows: d(full-suite estimate)/d(score), at
        the config's level ``reference`` (its per-case means over earlier nights)."""
        from evaluation.itembank._estimate import estimate_weights

        bank, why = self.usable(point, config, metric)
        if bank is None:
            return None, why
        if not ((reference >= 0) & (reference <= 1)).all():
            return None, f"{metric!r} scores outside [0, 1]"
        index = {case: i for i, case in enumerate(bank.cases)}
        known = [case for case in reference.index if case in index]
        if len(known) < 2:
            return None, f"item bank v{bank.row.version} knows fewer than 2 of these cases"
        weights = estimate_weights(
            bank.fit,
            {index[case]: float(reference[case]) for case in known},
            ability_mean=bank.row.ability_mean,
            ability_sd=bank.row.ability_sd,
        )
        return pd.Series(weights, index=known), ""

    def estimate(
        self, point: SeriesPoint, config: str, metric: str, scores: pd.Series
    ) -> tuple[float, float, float, str]:
        """The night's full-suite estimate (mean, low, high, its text)."""
        bank, why = self.usable(point, config, metric)
        if bank is None:  # the watch asks only where weights were given
            raise ValueError(why)
        found = bank.estimate({str(case): float(v) for case, v in scores.items()})
        return found.mean, found.low, found.high, found.text()
