"""Features: what the selector knows about a configuration and a task.

Configuration features describe the model (name, family, parameter count, quantisation),
its generation settings and the prompt template; context features describe the task
(task type, input length). Missing numeric settings stay NaN — "the server's default" —
and the gradient-boosted trees learn where such rows belong instead of an imputed value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaluation.spec._params import PARAMETERS

CONFIG_CATEGORICAL = (
    "model",
    "family",
    "quantization",
    "template",
    *(p.name for p in PARAMETERS if p.encoding == "categorical"),
)
CONFIG_NUMERIC = ("parameter_b", *(p.name for p in PARAMETERS if p.encoding == "numeric"))
"""The generation parameters come from ``evaluation.spec._params`` (``feature=``)."""
CONTEXT_CATEGORICAL = ("task_type",)
CONTEXT_NUMERIC = ("input_chars",)

INTERACTIONS = (("task_type", "model"), ("task_type", "template"))
"""Pairs also given as one combined category: a single split can then say "this template
helps code but hurts QA", which the trees otherwise assemble from several splits and
blur between task types."""

CATEGORICAL = CONFIG_CATEGORICAL + CONTEXT_CATEGORICAL + tuple(f"{a}*{b}" for a, b in INTERACTIONS)
NUMERIC = CONFIG_NUMERIC + CONTEXT_NUMERIC
FEATURES = CATEGORICAL + NUMERIC
"""Every feature the selector may use (categoricals first)."""

CONFIG_FEATURES = CONFIG_CATEGORICAL + CONFIG_NUMERIC

MAX_LEVELS = 250
"""The trees handle at most 255 categories per feature; rarer levels become missing."""

_SIZE = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_UNIT = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}


def parse_parameter_size(text: str | None) -> float:
    """Billions of parameters from Ollama's ``parameter_size`` ("8.0B" → 8.0, "137M" →
    0.137, "8x7B" → 56.0); NaN when empty or unreadable."""
    if not isinstance(text, str):
        return math.nan
    match = _SIZE.match(text)
    if match is None:
        return math.nan
    experts, number, unit = match.groups()
    return float(number) * _UNIT[unit.upper()] * (int(experts) if experts else 1)


def add_parameter_b(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``parameter_b`` column parsed from ``parameter_size``."""
    sizes = frame["parameter_size"].astype("string").fillna("")
    parsed = {s: parse_parameter_size(s) for s in sizes.unique()}
    return frame.assign(parameter_b=sizes.map(parsed).astype(float))


@dataclass
class FeatureEncoder:
    """Turns frames into the float matrix the trees read. Categories seen in training
    get codes 0..k-1; unseen ones become NaN (treated as missing, not as a known level).
    Numeric features never set in training (all server defaults) are left out."""

    levels: dict[str, list[str]] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> FeatureEncoder:
        levels = {}
        for name in CATEGORICAL:
            counts = _categorical(frame, name).value_counts()
            levels[name] = sorted(counts.index[:MAX_LEVELS].tolist())
        numeric = [name for name in NUMERIC if pd.to_numeric(_column(frame, name)).notna().any()]
        return cls(levels=levels, numeric=numeric)

    @property
    def columns(self) -> list[str]:
        """The features of the matrix, in order."""
        return [*CATEGORICAL, *self.numeric]

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([name in CATEGORICAL for name in self.columns])

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for name in CATEGORICAL:
            codes = {level: i for i, level in enumerate(self.levels[name])}
            columns.append(_categorical(frame, name).map(codes).astype(float).to_numpy())
        for name in self.numeric:
            numbers = pd.to_numeric(_column(frame, name), errors="coerce")
            columns.append(numbers.astype(float).to_numpy())
        return np.column_stack(columns)


def _categorical(frame: pd.DataFrame, name: str) -> pd.Series:
    parts = name.split("*")
    values = _column(frame, parts[0]).astype("string").fillna("")
    for part in parts[1:]:
        values = values + "*" + _column(frame, part).astype("string").fillna("")
    return values


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``; a parameter column the frame lacks (rows from before that
    parameter existed) reads as never set."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(np.nan, index=frame.index, dtype=float)
