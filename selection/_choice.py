"""Choosing among scored candidates: feasibility, preference, the Pareto front and the
settings that drove the choice (see :mod:`selection.recommender` for the rules)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluation.statistics.precision import told_apart
from selection._quality_floor import floor_refusal
from selection.features import CONFIG_FEATURES, CONFIG_NUMERIC
from selection.model import SelectorModel
from selection.recommendation import Driver

Prefer = Literal["quality", "speed"] | Mapping[str, float]
MAX_DRIVERS = 3
_MODEL_GROUP = ("model", "family", "parameter_b", "quantization")


def one_per_feature_vector(table: pd.DataFrame) -> pd.DataFrame:
    """Configs that differ only in what the selector cannot see (seed, template text)
    get identical predictions; keep the one with the most evidence."""
    keys = [c for c in CONFIG_FEATURES if c in table.columns]
    ranked = table.sort_values("evidence_n", ascending=False, kind="stable")
    return ranked.drop_duplicates(keys).sort_index()


def set_aside(table: pd.DataFrame, kept: pd.DataFrame) -> dict[str, str]:
    """The configs of ``table`` measured on the task type (``evidence_n``) that
    :func:`one_per_feature_vector` left out of ``kept``, each with the config kept in its
    place: their measurements differ, so a note names them (a template edited under its
    name: the new text's configs were left out, unsaid)."""
    keys = [c for c in CONFIG_FEATURES if c in table.columns]

    def vector(row: pd.Series) -> tuple:
        return tuple(None if pd.isna(v) else v for v in row[keys])

    kept_for = {vector(row): str(h) for h, row in kept.iterrows()}
    out = table[~table.index.isin(kept.index) & (table["evidence_n"] > 0)]
    return {str(h): kept_for[vector(row)] for h, row in out.iterrows() if vector(row) in kept_for}


SAFETY_Z = 1.5
"""Latency and energy estimates are raised by this many standard deviations of their
error (log scale) before they are held to a limit: "with margin"."""
LATENCY_REASON = "estimated p95 latency"
"""How a latency violation starts (``violations``)."""


def violations(
    table: pd.DataFrame,
    model: SelectorModel,
    max_latency_s: float | None,
    max_energy_j: float | None,
    min_quality: float | None,
) -> tuple[list[str], list[tuple[str, ...]]]:
    """Per candidate, the limits it is predicted to break (empty: feasible), and the
    problems with the request itself (a limit on something never measured)."""
    problems, found = [], [[] for _ in range(len(table))]
    checks = (
        ("latency_p95", max_latency_s, LATENCY_REASON, "s"),
        ("energy_j", max_energy_j, "predicted energy", "J"),
    )
    for target, limit, what, unit in checks:
        if limit is None:
            continue
        if target not in model.targets:
            problems.append(f"{what.split()[-1]} was never recorded: {what} cannot be checked")
            for item in found:
                item.append(f"{what} unknown")
            continue
        by_tail = table.get(f"{target}_by_tail", pd.Series(False, index=table.index))
        by_median = table.get(f"{target}_by_median", pd.Series(False, index=table.index))
        ratios = table.get("latency_tail_ratio", pd.Series(np.nan, index=table.index))
        own = table.get("latency_tail_own", pd.Series(False, index=table.index))
        held = table.get("latency_p95_held", pd.Series("", index=table.index))
        measured = table.get("measured", pd.Series(True, index=table.index))
        sources = table.get("latency_tail_source", pd.Series("", index=table.index))
        carried = table.get("latency_p95_carried_by", pd.Series("", index=table.index))
        if target != "latency_p95":
            carried = pd.Series("", index=table.index)
        for item, value, tail, median, ratio, whose, which, seen, source, carry in zip(
            found,
            table[f"{target}_safe"].to_numpy(),
            by_tail,
            by_median,
            ratios,
            own,
            held,
            measured,
            sources,
            carried,
            strict=True,
        ):
            if not value <= limit:
                how = checked_basis(
                    bool(median),
                    bool(tail),
                    float(ratio),
                    bool(whose),
                    which,
                    not seen,
                    source,
                    str(carry or ""),
                )
                shown, bound = told_apart(value, limit, figures=True)
                item.append(f"{what} {shown} {unit} ({how}) > {bound} {unit}")
    if min_quality is not None:
        for i in np.flatnonzero(table["quality"].to_numpy() < min_quality):
            found[i].append(floor_refusal(table.iloc[i], min_quality, len(table)))
    return problems, [tuple(item) for item in found]


HELD = {
    "own": "own calls' estimate, not pooled with its sampling twins (lower)",
    "pooled": "estimate pooled with its sampling twins (lower than its own calls')",
    "calls": "own calls' p95 alone: its estimate (combined with the model's prediction, or "
    "pooled with its sampling twins) read higher than its own calls allow",
}
"""Which of a config's two p95 estimates a limit holds it to, where it has sampling
twins (the lower; the answer shows that one), or "calls": its own calls' p95 alone with
margin, lower than either (:func:`selection._measured_latency.own_calls_p95`)."""


def checked_basis(
    by_median: bool,
    by_tail: bool,
    ratio: float,
    own: bool,
    held: str = "",
    predicted: bool = False,
    source: str = "",
    carried: str = "",
) -> str:
    """Which figure a candidate's p95 is held to a limit by (``<target>_safe``): its
    estimate raised by its margin, or its median times a tail ratio where that is larger
    (:func:`selection._scoring._with_tail_bounds`); ``held``: for a config with
    sampling twins, "own" where its own calls' estimate is the lower and "pooled" where
    the one pooled with them is (the estimate shown is that one), "" for one without;
    ``predicted``: never measured on the task type, its margin is its trees' spread (not
    the calibrated error its interval shows); ``source``: where the model's ratio comes
    from (``latency_tail_source``), said where the limit refuses it by that ratio;
    ``carried``: where its floor carried from another task type set it, those words
    (:mod:`selection._carried_latency`)."""
    if carried:
        return carried
    if by_median:
        return (
            f"its median with margin × {ratio:.2f}, the model's measured p95 / median on "
            f"the task type{f' ({source})' if source else ''}"
        )
    if by_tail and own:
        return f"its median × {ratio:.2f}, its own measured p95 / median bound"
    if by_tail:
        return (
            f"its median × {ratio:.2f}, the model's measured p95 / median on the task type "
            f"({f'{source}; ' if source else ''}a slow call its own generations may not have "
            "shown)"
        )
    if held:
        return f"with margin: {SAFETY_Z:g} sd of its error above its {HELD[held]}"
    if predicted:
        return (
            f"with margin: {SAFETY_Z:g} × the spread of the model's trees above its estimate, "
            "never run on the task type"
        )
    return f"with margin: {SAFETY_Z:g} sd of its error above its estimate"


def miss(row: pd.Series, request: dict[str, Any]) -> float:
    """How far a candidate is from the limits (sum of relative excesses)."""
    total = 0.0
    for column, key in (("latency_p95_safe", "max_latency_s"), ("energy_j_safe", "max_energy_j")):
        limit = request[key]
        if limit is not None:
            value = row.get(column, math.inf)
            total += max(0.0, (value - limit) / limit) if pd.notna(value) else math.inf
    if request["min_quality"] is not None:
        total += max(0.0, request["min_quality"] - row["quality"]) / max(
            request["min_quality"], 0.01
        )
    return total


TIE_Z = 1.96
"""With ``prefer="speed"`` a candidate ties with the fastest when their log median
latencies differ by less than this many standard deviations of the difference (each
estimate's ``latency_p50_sd``, taken as independent): not significantly slower at 5%."""


def speed_ties(feasible: pd.DataFrame) -> pd.Index:
    """The candidates whose median latency is within the noise of the fastest's (the
    fastest first among them); every one where no median latency is known."""
    if "latency_p50" not in feasible or feasible["latency_p50"].isna().all():
        return feasible.index
    latency = feasible["latency_p50"].astype(float)
    sd = feasible.get("latency_p50_sd", pd.Series(0.0, index=feasible.index)).astype(float)
    sd = sd.fillna(0.0)
    fastest = latency.idxmin()
    gap = np.log(latency) - np.log(latency[fastest])
    tied = gap <= TIE_Z * np.sqrt(sd**2 + sd[fastest] ** 2)
    return pd.Index([fastest]).append(feasible.index[tied & (feasible.index != fastest)])


WEIGHTED = {"quality": ("quality", 1), "latency": ("latency_p50", -1), "energy": ("energy_j", -1)}
"""Each ``prefer`` weight's column and sign (latency and energy count against a config)."""


def recorded_weights(prefer: Prefer, model: SelectorModel) -> tuple[Prefer, str | None]:
    """``prefer`` without the weights on a quantity the model never learnt (energy where
    no run could read it), and the note saying so (None where nothing was left out).
    Such a weight scored every candidate alike: a newcomer's ``{"energy": 1}`` returned
    the first candidate as if it were energy's choice, and ``{"quality": 1, "energy":
    1}`` quality's pick, silently. With nothing left, quality ranks."""
    if not isinstance(prefer, Mapping):
        return prefer, None
    unknown = [
        k for k, w in prefer.items() if w and k != "quality" and WEIGHTED[k][0] not in model.targets
    ]
    if not unknown:
        return prefer, None
    kept = {k: w for k, w in prefer.items() if w and k not in unknown}
    never = " and ".join(unknown)
    was = "was" if len(unknown) == 1 else "were"
    weight = "its weight was" if len(unknown) == 1 else "their weights were"
    ranked = " and ".join(kept) if kept else "quality"
    note = f"{never} {was} never recorded: {weight} left out; ranked by {ranked}"
    return (kept or "quality"), note


def choose(feasible: pd.DataFrame, prefer: Prefer) -> Any:
    """The index of the preferred feasible candidate. For speed, the candidates tied
    with the fastest (:func:`speed_ties`) are ranked by estimated quality, then median
    latency: a 0.01 s difference within the estimates' noise does not buy a worse
    config."""
    latency = feasible.get("latency_p50", pd.Series(0.0, index=feasible.index))
    if prefer == "quality":
        order = pd.DataFrame({"q": -feasible["quality"], "l": latency})
        return order.sort_values(["q", "l"], kind="stable").index[0]
    if prefer == "speed":
        tied = speed_ties(feasible)
        order = pd.DataFrame({"q": -feasible["quality"], "l": latency}).loc[tied]
        return order.sort_values(["q", "l"], kind="stable").index[0]
    score = pd.Series(0.0, index=feasible.index)
    for key, (column, sign) in WEIGHTED.items():
        weight = float(prefer.get(key, 0.0))
        if weight and column in feasible:
            values = feasible[column]
            spread = values.max() - values.min()
            normalised = (values - values.min()) / spread if spread > 0 else values * 0
            score += sign * weight * normalised.fillna(0)
    return score.idxmax()


def pareto(feasible: pd.DataFrame) -> list[Any]:
    """Indices on the quality–p95-latency front, fastest first: each faster beyond the
    estimates' noise than every candidate estimated better (log p95 apart by more than
    ``TIE_Z`` standard deviations of the difference, each ``latency_p95_sd``), as
    :func:`speed_ties` ties medians. A newcomer's front listed sim-small t=1.2 (quality
    0.432) beside its sampling twins t=0.7 (0.564) and t=0 (0.601), whose latency is one
    pooled estimate: "faster" by 10 µs of p95, strictly worse."""
    if "latency_p95" not in feasible:
        return []
    ordered = feasible.sort_values(["quality", "latency_p95"], ascending=[False, True])
    log_p95 = np.log(ordered["latency_p95"].astype(float)).to_numpy()
    sd = ordered.get("latency_p95_sd", pd.Series(0.0, index=ordered.index))
    sd = sd.astype(float).fillna(0.0).to_numpy()
    front = [
        i
        for i in range(len(ordered))
        if all(log_p95[i] < log_p95[:i] - TIE_Z * np.sqrt(sd[i] ** 2 + sd[:i] ** 2))
    ]
    return list(ordered.index[front][np.argsort(log_p95[front], kind="stable")])


def drivers(
    model: SelectorModel,
    evidence: pd.DataFrame,
    table: pd.DataFrame,
    chosen: Any,
    task_type: str,
    chars: float,
    target: str,
) -> tuple[Driver, ...]:
    """Swap one setting of the chosen config for its most common value among the configs
    measured on ``task_type`` and see how the prediction for ``task_type`` moves (the
    model's identity is swapped as a whole). The reference is the task type's own
    configs, not every candidate: another task type's settings (a classification
    sweep's short outputs) are no baseline for this one's; of them, those of
    ``evidence``, the ones the answer considers (:mod:`selection._considered`: a real
    pick was weighed against the simulated demo's num_predict 128). A setting of the
    pick that no such config has is marked: its effect there is learnt from other task
    types."""
    if target not in model.targets:
        return ()
    row = table.loc[[chosen]]
    measured = evidence.loc[evidence["task_type"] == task_type, "config_hash"]
    reference = model.configs[model.configs.index.isin(measured)]
    if reference.empty:
        return ()
    variants, described = [], []
    common_model = reference["model"].mode().iloc[0]
    groups = [("model", _MODEL_GROUP)] + [
        (name, (name,)) for name in ("template", *CONFIG_NUMERIC) if name != "parameter_b"
    ]
    for feature, columns in groups:
        if feature == "model":
            donor = reference[reference["model"] == common_model].iloc[0]
        else:
            donor = pd.Series({feature: _most_common(reference[feature])})
        if _same(row.iloc[0][feature], donor[feature]):
            continue
        variant = row.copy()
        for column in columns:
            variant[column] = donor[column]
        variants.append(variant)
        value = row.iloc[0][feature]
        seen = any(_same(value, other) for other in reference[feature])
        described.append((feature, _show(value), _show(donor[feature]), seen))
    if not variants:
        return ()
    rows = model.context_rows(pd.concat([row, *variants]), task_type, chars)
    x = model.encoder.transform(rows)
    predicted = model.targets[target].predict(x)[0]
    effects = [
        Driver(f, v, b, float(predicted[0] - p), target, task_type, seen)
        for (f, v, b, seen), p in zip(described, predicted[1:], strict=True)
    ]
    effects = [d for d in effects if abs(d.effect) >= 5e-4]
    return tuple(sorted(effects, key=lambda d: -abs(d.effect))[:MAX_DRIVERS])


def _most_common(values: pd.Series) -> Any:
    counts = values.value_counts(dropna=False)
    return counts.index[0] if len(counts) else np.nan


def _same(a: Any, b: Any) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def _show(value: Any) -> str:
    if pd.isna(value):
        return "server default"
    return f"{value:g}" if isinstance(value, float) else str(value)
