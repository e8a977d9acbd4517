"""A config never run on the task type that the multilevel fit cannot read: a setting's
value no measured config had (not between two measured values of an ordered setting), a
template or a model never measured there (:mod:`selection.multilevel`). Its quality
estimate is then the trees' alone, and at a few dozen measured configs the trees may not
tell templates apart at all: scikit-learn's trees split on a category only with 10 rows
of it, so a never-run cot config was predicted as the concise one (0.558 both) where
every measured cot config scored 0 (newcomers' C2). The note says so; words only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.spec._params import BY_NAME, STUDIED_PARAMETERS
from selection import shrinkage
from selection.model import SelectorModel
from selection.quality_text import quality
from selection.shrinkage import quality_factors

MAX_VALUES = 4
"""The measured values said beside an unread setting."""


def unread_settings(model: SelectorModel, row: pd.Series, task_type: str) -> list[str]:
    """The settings of ``row`` (a candidate, as ``model.configs`` holds one) whose value
    no config measured on ``task_type`` had, said with the values measured ("num_predict
    200 (measured: 128)"); empty for a config measured there or one the fit reads."""
    evidence = model.evidence[model.evidence["task_type"] == task_type]
    measured = evidence.loc[evidence["n_cases"].fillna(0) > 0, "config_hash"]
    measured = pd.Index(measured).intersection(model.configs.index)
    if row.name in measured or measured.empty:
        return []
    seen = quality_factors(model.configs.loc[measured])
    mine = quality_factors(row.to_frame().T).iloc[0]
    found = []
    for factor in seen.columns:
        values = set(seen[factor])
        if mine[factor] in values or _between(factor, mine[factor], values):
            continue
        found.append(f"{_said(factor, mine[factor])} (measured: {_listed(factor, values)})")
    return found


def unread_note(model: SelectorModel, row: pd.Series, task_type: str) -> str | None:
    """For a pick never run on ``task_type`` that the multilevel fit cannot read: that its
    quality figure is the trees' alone and why; where the trees tell no templates apart
    (permutation importance 0) but the measured configs' scores differ by template, the
    ranges by template. None otherwise."""
    unread = unread_settings(model, row, task_type)
    if not unread:
        return None
    text = (
        f"its quality figure is the trees' alone: no config measured on {task_type} had its "
        f"{'; '.join(unread)}, so what its other settings (its model, its template) measured "
        "there does not enter it"
    )
    importance = model.importances.get("quality", {})
    blind = all(importance.get(f, 0.0) <= 0 for f in ("template", "task_type*template"))
    evidence = model.evidence[model.evidence["task_type"] == task_type]
    scored = evidence.dropna(subset=["quality_mean"]).set_index("config_hash")["quality_mean"]
    scored = scored[scored.index.isin(model.configs.index)]
    templates = model.configs.loc[scored.index, "template"]
    ranges = scored.groupby(templates).agg(["min", "max"])
    if blind and len(ranges) > 1:
        said = ", ".join(
            f"{_span(r['min'], r['max'])} with template '{name}'" for name, r in ranges.iterrows()
        )
        text += (
            f"; the trees tell no templates apart (their permutation importance is 0: "
            f"they split on a template only with 10 rows of it), while the configs measured "
            f"on {task_type} scored {said}"
        )
    return text


def _span(low: float, high: float) -> str:
    return quality(low) if quality(low) == quality(high) else f"{quality(low)}–{quality(high)}"


def _between(factor: str, value: str, values: set[str]) -> bool:
    """Whether ``value`` of an ordered setting lies between two measured ``values``: the
    multilevel fit reads it between their effects."""
    if factor not in STUDIED_PARAMETERS or not shrinkage.READ_BETWEEN_MEASURED:
        return False
    x = pd.to_numeric(value, errors="coerce")
    numbers = pd.to_numeric(pd.Series(sorted(values)), errors="coerce").dropna()
    return bool(np.isfinite(x) and (numbers < x).any() and (numbers > x).any())


def _said(factor: str, value: str) -> str:
    """A factor's value as the answer says it: "template 'cot'", "num_predict 200"."""
    if factor == "template":
        return f"template '{value.split(chr(31))[0]}'"
    if factor == "model":
        return f"model {value}"
    return f"{factor} {_setting(factor, value)}"


def _listed(factor: str, values: set[str]) -> str:
    shown = sorted(_said(factor, v).split(" ", 1)[1] for v in values)
    more = len(shown) - MAX_VALUES
    return ", ".join(shown[:MAX_VALUES]) + (f" and {more} more" if more > 0 else "")


def _setting(factor: str, value: str) -> str:
    """A setting's stored text as a label writes it: "200" for "200.0", unset as such."""
    if value in ("", "nan", "None", "<NA>"):
        return "unset"
    parameter = BY_NAME.get(factor)
    if parameter is None or not parameter.numeric:
        return value
    return parameter.text(parameter.cast(float(value)))
