"""A trained selector: one small ensemble per target, plus what it was trained on.

Each target is predicted by an ensemble of gradient-boosted trees fitted on bootstrap
weights, kept as plain arrays (:mod:`selection._forest`). Its model-error
standard deviation is ``scale``·(spread + ``floor``), spread being the ensemble's,
calibrated on grouped cross-validation residuals net of sampling noise (see
:mod:`selection.training`); the interval is the mean ± ``z`` of those (90%). Positive
targets (latency, speed, energy) are modelled on the log scale, so their intervals are
relative.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selection._forest import Trees
from selection.features import FeatureEncoder
from selection.prompt_fit import prompt_lengths

QUALITY = "quality"
LOG_TARGETS = frozenset({"latency_p50", "latency_p95", "tokens_per_s", "energy_j"})
MAX_LOG = float(np.log(np.finfo(float).max))
"""The largest log value whose exp is a finite float."""
MAX_CACHED = 8


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the trees on one OpenMP thread. The selector fits a few thousand aggregate
    rows, where threads gain little; on a busy machine OpenMP's spinning threads made
    fits 10–60x slower (measured on a shared 2-core box)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@dataclass
class TargetModel:
    """The ensemble for one target and its calibrated interval."""

    name: str
    members: list[Trees]
    scale: float
    floor: float
    z: float = 1.645

    def predict_raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread on the fitting scale (log for positive targets)."""
        with single_threaded():
            preds = np.stack([member.predict(x) for member in self.members])
        return preds.mean(axis=0), preds.std(axis=0)

    def predict_sd(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and the calibrated model-error sd, on the fitting scale."""
        mean, spread = self.predict_raw(x)
        return mean, self.scale * (spread + self.floor)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point prediction, interval low and high, on the target's own scale."""
        mean, sd = self.predict_sd(x)
        return _to_scale(self.name, mean, mean - self.z * sd, mean + self.z * sd)


@dataclass
class SelectorModel:
    """Everything ``recommend`` needs, persisted as one object (:mod:`selection._codec`).

    ``configs`` has one row per known config (identity + features); ``evidence`` has what
    was measured per (config, task type) (:func:`selection.aggregate.evidence`);
    ``case_scores`` the per-case quality behind it, for paired comparisons;
    ``prompt_lengths`` the prompt token counts of the stored cases; ``trained_keys``
    names the (config, suite) pairs
    the model saw, so a later candidate can be compared with it on data it never saw.
    """

    encoder: FeatureEncoder
    targets: dict[str, TargetModel]
    configs: pd.DataFrame
    evidence: pd.DataFrame
    case_scores: pd.DataFrame
    typical_input_chars: dict[str, float]
    trained_keys: frozenset[str]
    coverage: float
    importances: dict[str, dict[str, float]] = field(default_factory=dict)
    prompt_lengths: pd.DataFrame = field(default_factory=lambda: prompt_lengths(pd.DataFrame()))
    """The most prompt tokens stored per model, template and input length
    (:func:`selection.prompt_fit.prompt_lengths`; empty in selectors trained before)."""
    _predicted: dict[tuple, pd.DataFrame] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _multilevel: dict[Any, Any] = field(  # quality fits by task type, checks by key
        default_factory=dict, init=False, repr=False, compare=False
    )
    _scored: dict[tuple, pd.DataFrame] = field(  # selection._scoring.scored_candidates
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def task_types(self) -> list[str]:
        return sorted(self.typical_input_chars)

    def predict_rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Predictions for rows that carry config features, ``task_type`` and
        ``input_chars``: per target ``<t>``, ``<t>_low``, ``<t>_high`` and ``<t>_spread``
        (the ensemble's standard deviation on the fitting scale: log units for positive
        targets)."""
        x = self.encoder.transform(rows)
        columns = {}
        for name, target in self.targets.items():
            mean, spread = target.predict_raw(x)
            sd = target.scale * (spread + target.floor)
            value, low, high = _to_scale(name, mean, mean - target.z * sd, mean + target.z * sd)
            columns |= {
                name: value,
                f"{name}_low": low,
                f"{name}_high": high,
                f"{name}_spread": spread,
            }
        return pd.DataFrame(columns, index=rows.index)

    def context_rows(
        self, configs: pd.DataFrame, task_type: str, input_chars: float | None = None
    ) -> pd.DataFrame:
        """``configs`` placed in a task: the task type and an input length (the task
        type's typical one unless given)."""
        chars = input_chars if input_chars is not None else self.typical_input_chars.get(task_type)
        return configs.assign(task_type=task_type, input_chars=np.nan if chars is None else chars)

    def predict(
        self, configs: pd.DataFrame, task_type: str, input_chars: float | None = None
    ) -> pd.DataFrame:
        """Predictions for ``configs`` on ``task_type``. Kept per (task type, input
        length, configs) for the last few calls: every recommendation for a task scores
        the same candidates, and the trees are most of its time. A config hash names
        its features, so the index identifies the rows."""
        key = (task_type, input_chars, tuple(configs.index))
        if key not in self._predicted:
            if len(self._predicted) >= MAX_CACHED:
                self._predicted.pop(next(iter(self._predicted)))
            rows = self.context_rows(configs, task_type, input_chars)
            self._predicted[key] = self.predict_rows(rows)
        return self._predicted[key].copy()


def _to_scale(name: str, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """From the fitting scale to the target's own (exp for positive targets; quality
    clipped to [0, 1])."""
    if name in LOG_TARGETS:
        return tuple(from_log(v) for v in values)
    if name == QUALITY:
        return tuple(np.clip(v, 0, 1) for v in values)
    return values


def from_log(values: np.ndarray) -> np.ndarray:
    """exp of log-scale ``values``, clipped in log space to the largest finite float: an
    interval end of a target whose calibration scale was inflated (tokens_per_s at 5e7
    where a model ran on one suite alone, suite-grouped cross-validation predicting it
    from other models) overflowed with a RuntimeWarning a user saw."""
    return np.exp(np.minimum(values, MAX_LOG))
