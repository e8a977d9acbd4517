"""Candidate configs for a recommendation, and turning a scored candidate into an Option."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluation.spec import Config
from evaluation.spec._params import PARAMETERS, Parameter
from selection._choice import checked_basis
from selection._considered import considered, simulated
from selection._evidence_rule import EVIDENCE_WEIGHT
from selection.features import add_parameter_b
from selection.frame import CONFIG_COLUMNS
from selection.model import SelectorModel
from selection.recommendation import Estimate, Evidence, Option

_TARGET_FIELDS = {
    "latency_p50": "latency_p50_s",
    "latency_p95": "latency_p95_s",
    "tokens_per_s": "tokens_per_s",
    "energy_j": "energy_j",
}


def candidate_table(
    model: SelectorModel, candidates: Sequence[Config | str] | None, task_type: str
) -> tuple[pd.DataFrame, list[str]]:
    """The configs to score (index: config hash) with ``evidence_n``, the measured
    generations on ``task_type``; notes name candidates that could not be resolved."""
    known = model.configs
    notes: list[str] = []
    if candidates is None:
        table = known.copy()
    else:
        labels = {params_label(row): h for h, row in known.iterrows()}
        rows, unknown = [], []
        for candidate in candidates:
            if isinstance(candidate, Config):
                rows.append(
                    known.loc[candidate.hash]
                    if candidate.hash in known.index
                    else _row_for(candidate, known)
                )
            elif candidate in known.index:
                rows.append(known.loc[candidate])
            elif candidate in labels:
                rows.append(known.loc[labels[candidate]])
            elif (found := _by_prefix(candidate, known.index)) is not None:
                rows.append(known.loc[found])
            else:
                unknown.append(candidate + _too_short(candidate, known.index))
        if unknown:
            notes.append(f"unknown candidate(s) ignored: {', '.join(unknown)}")
        table = pd.DataFrame(rows, columns=known.columns)
        table = table[~table.index.duplicated()]
    measured = model.evidence[model.evidence["task_type"] == task_type]
    counts = measured.set_index("config_hash")["n"]
    table["evidence_n"] = table.index.map(counts).fillna(0).astype(int)
    return table, notes


SHORT_HASH = 8
"""The fewest leading characters of a config hash that name it as a candidate: the short
form `trends` and `gate` print."""
MAX_NAMED = 3
"""The known configs a `next:` line names where none of the candidates is known."""


def none_known(
    model: SelectorModel, candidates: Sequence[Config | str], task_type: str
) -> tuple[str, ...]:
    """The `next:` lines of an answer none of whose ``candidates`` is known (only a hash
    or a label can be: a ``Config`` is predicted): how a config is named, with configs it
    may name (those of a model named instead of a config, else the task type's), and,
    unless each is a model it knows, how a config of a model it never saw gets an answer
    (a newcomer's `candidates=["llama3:70b"]` got no `next:` line)."""
    known = model.configs
    models = [c for c in candidates if isinstance(c, str) and c in set(known["model"])]
    if models:
        rows = known[known["model"].isin(models)]
        what = f"{', '.join(models)}: model name(s), not configs; their configs: "
    else:
        rows = known[known.index.isin(considered(model.evidence, task_type)["config_hash"])]
        what = f"the {task_type} configs the selector knows: "
    labels = [params_label(row) for _, row in rows.head(MAX_NAMED).iterrows()]
    more = f" and {len(rows) - len(labels)} more" if len(rows) > len(labels) else ""
    naming = (
        f"name a config by its label or its hash (whole, or its first {SHORT_HASH} or more "
        f"characters); {what}{'; '.join(labels)}{more}"
    )
    if len(models) == len(candidates):  # every one a model the selector knows
        return (naming,)
    return (
        naming,
        "for a model the selector never saw, give an evaluation.spec.Config of it (its "
        f"figures are then predicted), or run it on a {task_type} suite, then `evalflow retrain`",
    )


def _by_prefix(text: str, hashes: pd.Index) -> str | None:
    """The one hash of ``hashes`` that ``text`` (at least ``SHORT_HASH`` characters)
    begins, else None (none, or several)."""
    if len(text) < SHORT_HASH:
        return None
    found = [h for h in hashes if str(h).startswith(text)]
    return str(found[0]) if len(found) == 1 else None


def _too_short(text: str, hashes: pd.Index) -> str:
    """What to add to an unknown candidate that begins a hash but is too short to name
    it ("" otherwise): a newcomer's 4-character prefix was only called unknown."""
    if len(text) >= SHORT_HASH or not any(str(h).startswith(text) for h in hashes):
        return ""
    return f" (a hash is named by its first {SHORT_HASH} or more characters)"


def real_only(
    model: SelectorModel, table: pd.DataFrame, task_type: str
) -> tuple[pd.DataFrame, list[str]]:
    """``table`` without the simulated configs where ``task_type`` has configs measured
    on real runs: those measured on the task type (partly) by the SIMULATED backend, and
    those never measured on it whose model never ran for real. A recommendation is for
    real use, and the simulated backend's configs are served by no host (`evalflow
    retrain --include-simulated`, which running-for-real.md gives a real demo too small
    to train alone, learns from them; they are not picks). Where the task type has no
    real measurement (the simulated demo), ``table`` is returned whole. Also the labels of
    the configs left out."""
    evidence = model.evidence
    fake_rows = simulated(evidence)
    on_task = evidence["task_type"] == task_type
    if not (on_task & ~fake_rows).any():
        return table, []
    fake = set(evidence.loc[on_task & fake_rows, "config_hash"])
    measured = set(evidence.loc[on_task, "config_hash"])
    real_models = set(model.configs.reindex(evidence.loc[~fake_rows, "config_hash"])["model"])
    out = [
        h in fake or (h not in measured and table.loc[h, "model"] not in real_models)
        for h in table.index
    ]
    left = table[out]
    return table[[not o for o in out]], [params_label(row) for _, row in left.iterrows()]


def option(
    model: SelectorModel, row: pd.Series, task_type: str, violations: tuple[str, ...] = ()
) -> Option:
    """A scored candidate row as an Option, with its evidence on ``task_type``."""
    params = _params(row)
    estimates = {
        field: _estimate(row, target)
        for target, field in _TARGET_FIELDS.items()
        if target in row.index and pd.notna(row[target])
    }
    quality = _estimate(row, "quality") if "quality" in row.index else Estimate(*[float("nan")] * 3)
    weight = float(row.get("quality_weight", 0.0) or 0.0)
    measured = bool(row.get("measured", False))
    basis = "predicted"
    if measured:
        basis = "measured" if weight >= EVIDENCE_WEIGHT else "measured and predicted"
    pooled = float(row.get("quality_measurement", np.nan))
    pooled_p95 = float(row.get("latency_p95_measurement", np.nan))
    predicted = {
        "predicted_quality": _estimate(row, "quality", "_predicted"),
        "predicted_latency_p95_s": _estimate(row, "latency_p95", "_predicted"),
        "measured_quality_pooled": pooled if np.isfinite(pooled) else None,
        "measured_quality_se": float(row["quality_measurement_sd"])
        if np.isfinite(pooled) and np.isfinite(row.get("quality_measurement_sd", np.nan))
        else None,
        "measured_quality_own": bool(row.get("quality_measurement_own", False)),
        "measured_latency_p95_pooled_s": pooled_p95 if np.isfinite(pooled_p95) else None,
        "latency_p95_measurement_weight": float(row.get("latency_p95_weight", 0.0) or 0.0),
        "latency_pooled_with": tuple(
            params_label(model.configs.loc[h])
            for h in row.get("latency_pooled_with", ())
            if h in model.configs.index
        ),
    }
    checked = float(row.get("latency_p95_safe", np.nan))
    held: dict[str, Any] = {}
    if np.isfinite(checked):  # the p95 a latency limit holds it to
        held["latency_p95_checked_s"] = checked
        held["latency_p95_checked_by"] = checked_basis(
            bool(row.get("latency_p95_by_median", False)),
            bool(row.get("latency_p95_by_tail", False)),
            float(row.get("latency_tail_ratio", np.nan)),
            bool(row.get("latency_tail_own", False)),
            str(row.get("latency_p95_held", "") or ""),
            not measured,
            carried=str(row.get("latency_p95_carried_by", "") or ""),
        )
    return Option(
        config_hash=str(row["config_hash"]),
        model=str(row["model"]),
        label=params_label(row),
        params=params,
        template=str(row["template"]),
        template_text=str(row["template_text"]),
        quality=quality,
        evidence=_evidence(model, str(row["config_hash"]), task_type),
        family=str(row["family"]),
        parameter_size=str(row["parameter_size"]),
        quantization=str(row["quantization"]),
        violations=violations,
        basis=basis,
        measurement_weight=weight if measured else 0.0,
        **(predicted if measured else {}),
        **estimates,
        **held,
    )


def params_label(row: pd.Series) -> str:
    """The config's label (``Config.label``) from its row of ``SelectorModel.configs``."""
    option = Option(
        config_hash="",
        model=str(row["model"]),
        label="",
        params=_params(row),
        template=str(row["template"]),
        template_text=str(row["template_text"]),
        quality=Estimate(0, 0, 0),
    )
    return option.config().label


def _params(row: pd.Series) -> dict[str, float | int | str | bool | None]:
    """The row's generation parameters; missing, NaN or "" (a categorical never set,
    as the feature encoder reads it) is None."""
    return {p.name: None if _unset(row.get(p.name)) else p.cast(row[p.name]) for p in PARAMETERS}


def _unset(value: object) -> bool:
    return value is None or value == "" or bool(pd.isna(value))


def _estimate(row: pd.Series, target: str, suffix: str = "") -> Estimate | None:
    names = [f"{target}{part}{suffix}" for part in ("", "_low", "_high")]
    if not all(name in row.index for name in names):
        return None
    return Estimate(*(float(row[name]) for name in names))


def _evidence(model: SelectorModel, config_hash: str, task_type: str) -> Evidence:
    table = model.evidence
    match = table[(table["config_hash"] == config_hash) & (table["task_type"] == task_type)]
    if match.empty:
        return Evidence()
    found = match.iloc[0]

    def number(name: str) -> float | None:
        value = found.get(name)
        return None if value is None or pd.isna(value) else float(value)

    return Evidence(
        n_generations=int(found["n"]),
        n_cases=int(found["n_cases"]),
        quality_se=number("quality_se"),
        n_failed=int(found["n_failed"]),
        n_suites=int(found["n_suites"]) if pd.notna(found["n_suites"]) else 0,
        quality_mean=number("quality_mean"),
        quality_ci_low=number("quality_ci_low"),
        quality_ci_high=number("quality_ci_high"),
        latency_p50_s=number("latency_p50"),
        latency_p95_s=number("latency_p95"),
        simulated=int(found.get("n_simulated", 0)) > 0,
    )


def _row_for(config: Config, known: pd.DataFrame) -> pd.Series:
    """A config the selector never saw: its model's metadata comes from a known config of
    the same model, if any. Its settings are written as the known configs' are (a text
    setting unset as "", a list as its stored JSON): the multilevel fit reads a setting
    by its text, and a None there read as a value no measured config had."""
    same_model = known[known["model"] == config.model]
    meta: dict[str, Any] = {"family": "", "parameter_size": "", "quantization": ""}
    if not same_model.empty:
        meta = {k: same_model.iloc[0][k] for k in meta}
    values = {
        "config_hash": config.hash,
        "model": config.model,
        **meta,
        **{p.name: _as_stored(p, getattr(config.params, p.name)) for p in PARAMETERS},
        "template": config.template.name,
        "template_text": config.template.text,
    }
    frame = add_parameter_b(pd.DataFrame([values], columns=list(CONFIG_COLUMNS)))
    numeric = [p.name for p in PARAMETERS if p.numeric]
    frame[numeric] = frame[numeric].astype(float)
    return frame.iloc[0].rename(config.hash)


def _as_stored(parameter: Parameter, value: object) -> object:
    """``value`` as ``SelectorModel.configs`` holds it (:func:`selection.frame.config_table`)."""
    if parameter.numeric:
        return value
    return "" if value is None else parameter.stored(value)
