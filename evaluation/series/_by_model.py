"""The gate's pairing by model: a config matched neither by hash nor by label, the one
config of its model in each run, compared with the baseline's (``lone_config_pairs``, as
`trends` reads the model's stream across the edit); and, where that pairs nothing, why."""

from __future__ import annotations

from math import isnan

import pandas as pd

from evaluation.series._series import SeriesPoint, lone_config_pairs, same_model

_NOT_SETTINGS = ("hash", "model", "label")


def pair_by_model(
    base: SeriesPoint,
    cand: SeriesPoint,
    cand_ran: set[str],
    base_ran: set[str],
    by_label: dict[str, tuple[str, str]],
) -> dict[str, str]:
    """The candidate's configs matched neither by hash nor by label, each paired with the
    baseline's where it is the one config of its model in each run (a value its label
    shows was edited), whatever the other models' configs did: candidate hash ->
    baseline hash."""
    cand_left = cand_ran - base_ran - set(by_label)
    base_left = base_ran - cand_ran - {b for b, _ in by_label.values()}
    pairs = lone_config_pairs(base, cand)
    return {c: b for c, b in pairs.items() if c in cand_left and b in base_left}


def why_not_by_model(
    base: SeriesPoint, cand: SeriesPoint, base_configs: pd.DataFrame, configs: pd.DataFrame
) -> str:
    """Why the models both runs ran were not paired by model, one clause a model: its
    configs in each run (pairing by model needs one in each) and the settings in which
    they differ, or other weights (a model change, not a config edited); "" where no
    model is in both runs."""
    reasons = []
    for model in dict.fromkeys(m for m in cand.config_models.values() if m):
        mine, theirs = _of_model(cand, model), _of_model(base, model)
        if not theirs:
            continue
        if len(mine) == len(theirs) == 1:
            if _other_weights(base, cand, model):
                reasons.append(
                    f"{model} ran other weights in each run (its digest differs): a model "
                    "changed, not a config edited"
                )
            continue
        counted = (
            f"{len(mine)} configs in each run"
            if len(mine) == len(theirs)
            else f"{len(mine)} config{'s' * (len(mine) > 1)} in {cand.experiment!r} and "
            f"{len(theirs)} in {base.experiment!r}"
        )
        differ = _settings_differ(base_configs, theirs, configs, mine)
        reasons.append(
            f"{model} has {counted}, and pairing by model needs the one config of a model in "
            "each run (which became which is not for the gate to guess)"
            + (f"; they differ in {differ}" if differ else "")
        )
    return "; ".join(reasons)


def _of_model(point: SeriesPoint, model: str) -> list[str]:
    return [h for h, m in point.config_models.items() if m and same_model(m, model)]


def _other_weights(base: SeriesPoint, cand: SeriesPoint, model: str) -> bool:
    said = [
        {m.digest for m in p.models if m.digest and same_model(m.model, model)}
        for p in (base, cand)
    ]
    return all(said) and not said[0] & said[1]


def _settings_differ(
    base_configs: pd.DataFrame, theirs: list[str], configs: pd.DataFrame, mine: list[str]
) -> str:
    """The settings whose values differ between a model's configs in the baseline and
    in the candidate, as the spec names them: "num_predict (256 -> 3)", "template text"."""
    base = base_configs[base_configs["hash"].isin(theirs)]
    cand = configs[configs["hash"].isin(mine)]
    out = []
    for column in (c for c in cand.columns if c not in _NOT_SETTINGS and c in base.columns):
        before, after = _values(base[column]), _values(cand[column])
        if before == after:
            continue
        out.append(
            "template text" if column == "template_text" else f"{column} ({before} -> {after})"
        )
    return ", ".join(out)


def _values(column: pd.Series) -> str:
    """A setting's values over some configs, each once, in order: "0, 0.7"; "unset"."""
    return ", ".join(sorted({_value(v) for v in column}))


def _value(v: object) -> str:
    if v is None or (isinstance(v, float) and isnan(v)):
        return "unset"
    return f"{v:g}" if isinstance(v, float) else str(v)
