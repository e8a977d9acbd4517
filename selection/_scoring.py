"""The candidates as the choice sees them: predictions combined with the measurements,
the latency and energy figures the limits hold each to (raised by their margin, p95
bounded by the model's tail ratio, the lower of its own calls' and its pooled figure),
one row per feature vector, quality corrected for selection and widened by the error
the candidates share from their cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evaluation.wording import counted
from selection._candidates import candidate_table, real_only
from selection._carried_latency import carried_floor
from selection._choice import SAFETY_Z, Prefer, one_per_feature_vector
from selection._measured_latency import held_to_own_calls
from selection._selection_bias import correct_for_selection
from selection.model import MAX_CACHED, SelectorModel
from selection.prompt_fit import overflow
from selection.shrinkage import combine, quality_fit, shared_case_variance


def ranks_latency(prefer: Prefer) -> bool:
    """Whether ``prefer`` ranks candidates by latency ("speed", or a latency weight).
    Such a ranking reads each measured config's latency on its own, not pooled over
    configs differing only in sampling settings: pooling evens those siblings out (a
    newcomer's t = 0.7, measured 34 s, was shown 54 s with its t = 0 twin) and the
    ranking between them would follow the prediction, not what was measured."""
    if isinstance(prefer, str):
        return prefer == "speed"
    return float(prefer.get("latency", 0.0)) > 0


def scored_candidates(
    model: SelectorModel,
    table: pd.DataFrame,
    task_type: str,
    input_chars: float,
    *,
    pool_sampling: bool = True,
) -> pd.DataFrame:
    """The candidates of ``table`` as the choice sees them: predictions combined with the
    measurements (:func:`selection.shrinkage.combine`), ``<target>_safe`` for the latency
    and energy estimates raised by their margin, one row per feature vector, quality
    corrected for selection among them (:mod:`selection._selection_bias`;
    ``selection_corrected`` says whether there were enough candidates to). Kept on the
    model for the last few (task type, input length, candidates): they do not depend on
    the limits, so every answer for a task scores the same table (a config hash names
    its row of ``table``). ``pool_sampling``: measured latencies pooled over configs
    differing only in sampling settings (:func:`selection.shrinkage.combine`)."""
    key = (task_type, input_chars, tuple(table.index), pool_sampling)
    cache = model._scored
    if key not in cache:
        if len(cache) >= MAX_CACHED:
            cache.pop(next(iter(cache)))
        cache[key] = _scored(model, table, task_type, input_chars, pool_sampling)
    return cache[key].copy()


def _scored(
    model: SelectorModel,
    table: pd.DataFrame,
    task_type: str,
    input_chars: float,
    pool_sampling: bool,
) -> pd.DataFrame:
    checking = _checking_only(model, table, task_type)
    full = pd.concat([table, checking]) if len(checking) else table
    predicted = full.join(model.predict(full, task_type, input_chars))
    table = combine(model, predicted, task_type, pool_sampling=pool_sampling).iloc[: len(table)]
    table["prompt_overflow"] = overflow(model.prompt_lengths, table, task_type, input_chars)
    other = combine(model, predicted, task_type, pool_sampling=not pool_sampling)
    other = other.iloc[: len(table)]
    held = _held_to_limits(model, table, task_type)
    if "latency_p95_safe" in held:  # the lower of its own calls' and its pooled figure
        by_other = _held_to_limits(model, other, task_type)
        own_safe, pooled_safe = (by_other, held) if pool_sampling else (held, by_other)
        own_p95, pooled_p95 = own_safe["latency_p95_safe"], pooled_safe["latency_p95_safe"]
        own = (own_p95 <= pooled_p95) | pooled_p95.isna()  # on a tie, its own calls
        lower = own if pool_sampling else ~own  # the other side's figure is the lower
        held = held.where(~lower, by_other)
        pooled = table if pool_sampling else other
        twins = pooled["latency_pooled_with"].map(len) > 0
        held["latency_p95_held"] = np.where(twins, np.where(own, "own", "pooled"), "")
        by_tail = held.get("latency_p95_by_tail", pd.Series(False, index=held.index))
        calls = held["latency_p95_own_calls"].astype(bool) & ~by_tail.astype(bool)
        held["latency_p95_held"] = held["latency_p95_held"].where(~calls, "calls")
        table = _p95_as_held(table, other, lower)
    table = table.assign(**{column: held[column] for column in held.columns})
    table = one_per_feature_vector(table)
    corrected = False
    if "quality" in model.targets:
        fit = quality_fit(model, task_type)
        table, corrected = correct_for_selection(table, model.targets["quality"].z, fit)
        table = _with_shared_case_error(table, model, task_type)
    return table.assign(selection_corrected=corrected)


def _checking_only(model: SelectorModel, table: pd.DataFrame, task_type: str) -> pd.DataFrame:
    """The configs measured on ``task_type`` that an answer without ``candidates`` scores
    (the real ones where there are any: :func:`selection._candidates.real_only`) and
    ``table`` lacks: they check the prior with the table's own measured configs
    (:func:`selection.shrinkage.combine`) and are then dropped, so a config's estimate
    does not depend on the other candidates named. Named alone, a real config measured
    on 3 cases took 100% of its estimate from them (0.836), against 65% (0.691) in the
    answer that weighed every measured config (newcomer ncsel-4)."""
    measured = model.evidence.loc[model.evidence["task_type"] == task_type, "config_hash"]
    plain = real_only(model, candidate_table(model, None, task_type)[0], task_type)[0]
    rows = plain.index.isin(set(measured)) & ~plain.index.isin(table.index)
    return plain[rows]


def _p95_as_held(table: pd.DataFrame, other: pd.DataFrame, lower: pd.Series) -> pd.DataFrame:
    """``table`` with each ``lower`` row's p95 figures (estimate, interval, measurement,
    weight, the twins it was pooled with) taken from ``other``: the p95 shown is the one
    the limit holds, whatever the ranking. A newcomer's answer ranked for quality showed
    a pooled interval reaching 8.24 s under an 8 s limit it said the config met (by its
    own calls' 7.68 s with margin). The median stays the ranking's
    (:func:`ranks_latency`)."""
    columns = [c for c in other.columns if c.startswith("latency_p95")]
    columns.append("latency_pooled_with")
    out = table.copy()
    rows = lower.to_numpy(dtype=bool)
    for column in columns:
        values = out[column].to_numpy(copy=True)
        values[rows] = other[column].to_numpy()[rows]
        out[column] = values
    return out


def _held_to_limits(model: SelectorModel, table: pd.DataFrame, task_type: str) -> pd.DataFrame:
    """The figures the limits hold each candidate of ``table`` to: ``<target>_safe`` (the
    estimate raised by its margin, latency also bounded by the tail ratio:
    :func:`_with_tail_bounds`) and how the latency one was set. :func:`_scored` takes,
    per config, the lower p95 figure of its own calls' and its pooled one (over sampling
    twins), both computed whatever the ranking: one verdict per config and limit for
    quality and for speed (a newcomer's gemma config, measured at p95 7.68 s with margin
    on its 36 own calls, was refused at 8 s ranked for quality, pooled with its twin to
    8.06 s, and picked ranked for speed). A limit refuses a config only where neither
    its own calls nor the pooled reading meet it: what its own calls measured is not
    overruled by its twins', and holding it to its own calls alone lost 4 of 130 queries'
    hits in the selector benchmark's cliff world (seed 1, 1k), this 1."""
    out = pd.DataFrame(index=table.index)
    for target in ("latency_p95", "energy_j"):
        if target in model.targets:
            out[f"{target}_safe"] = _with_margin(table, target)
    if "latency_p95_safe" in out:  # never above what its own calls meet with margin
        out["latency_p95_safe"], out["latency_p95_own_calls"] = held_to_own_calls(
            table, out["latency_p95_safe"]
        )
    if {"latency_p50", "latency_p95"} <= set(model.targets):
        tail_ratio = _tail_ratio(model, table, task_type)
        out["latency_tail_ratio"] = tail_ratio["ratio"]
        out["latency_tail_own"] = tail_ratio["own"]
        out["latency_tail_source"] = tail_ratio["source"]
        for column in ("at", "more", "line"):
            out[f"latency_tail_{column}"] = tail_ratio[column]
        bounded = _with_tail_bounds(table.assign(**{c: out[c] for c in out.columns}))
        for column in ("safe", "by_median", "by_tail", "untailed"):
            out[f"latency_p95_{column}"] = bounded[f"latency_p95_{column}"]
    if "latency_p95_safe" in out:
        out = _with_carried_floor(out, *carried_floor(model, table, task_type))
    return out


def _with_carried_floor(out: pd.DataFrame, floor: pd.Series, words: pd.Series) -> pd.DataFrame:
    """``out`` (:func:`_held_to_limits`) with a never-run config's p95 figure raised to its
    floor carried from another task type (:mod:`selection._carried_latency`) where that
    is higher, and ``latency_p95_carried_by`` saying so ("" elsewhere); a figure so set
    is neither its tail bound's nor its median's."""
    raised = (floor > out["latency_p95_safe"]).to_numpy(dtype=bool)
    out = out.assign(latency_p95_carried_by=words.where(raised, ""))
    if not raised.any():
        return out
    for column in ("safe", "untailed"):
        if f"latency_p95_{column}" in out:
            out[f"latency_p95_{column}"] = np.fmax(
                out[f"latency_p95_{column}"], floor.where(raised)
            )
    for column in ("by_median", "by_tail"):
        if f"latency_p95_{column}" in out:
            out[f"latency_p95_{column}"] = out[f"latency_p95_{column}"].astype(bool) & ~raised
    return out


def _with_tail_bounds(table: pd.DataFrame) -> pd.DataFrame:
    """``latency_p95_safe`` held by the candidate's median times its model's tail ratio
    (p95 / median, a distribution-free bound: :func:`_tail_ratio`), from both sides:

    - never below it, a slow mode the config's own calls may not have shown
      (``latency_p95_by_tail``);
    - for a config never measured on the task type, never above that product with the
      median raised by its own margin (``latency_p95_by_median``). The trees learn p95
      from 10-call estimates, which a heavy tail skews upward: in the selector
      benchmark's tails world at 3k generations, never-measured configs' predicted p95
      read 23–54% above the truth before their margin, their median × the ratio 7–30%.
      A measured config keeps its own calls' p95: its shape may differ from its model's
      (real 16- and 64-token answers do)."""
    tail = table["latency_p50"] * table["latency_tail_ratio"]
    by_median = tail * np.exp(SAFETY_Z * table["latency_p50_spread"])
    capped = ~table["measured"].astype(bool) & (by_median < table["latency_p95_safe"])
    safe = table["latency_p95_safe"].where(~capped, by_median)
    return table.assign(
        latency_p95_by_median=capped,
        latency_p95_by_tail=tail > safe,
        latency_p95_safe=np.fmax(safe, tail),
        latency_p95_untailed=safe,
    )


def _with_shared_case_error(
    table: pd.DataFrame, model: SelectorModel, task_type: str
) -> pd.DataFrame:
    """The quality interval widened by the error all candidates share from the cases
    they were measured on (:func:`selection.shrinkage.shared_case_variance`):
    ``quality_shared_sd``. The choice compares candidates, in which it cancels; the
    interval says how well each one's quality on the task type is known."""
    shared = shared_case_variance(model, task_type)
    sd = np.sqrt(table["quality_sd"].astype(float) ** 2 + shared)
    z = model.targets["quality"].z
    return table.assign(
        quality_low=np.clip(table["quality"] - z * sd, 0, 1),
        quality_high=np.clip(table["quality"] + z * sd, 0, 1),
        quality_shared_sd=math.sqrt(shared),
    )


def _tail_ratio(model: SelectorModel, table: pd.DataFrame, task_type: str) -> pd.DataFrame:
    """Per candidate, ``ratio``: its model's ``latency_tail_ratio`` on ``task_type`` (an
    upper confidence bound on p95 / median: :func:`selection.aggregate.tail_ratio`), or
    over all its task types where the model was not measured on this one; NaN where the
    model has too few generations for that bound. A config measured on the task type
    whose tail its calls show lighter than the rest of its model's
    (:func:`selection.aggregate.lighter_tail`) has its own bound instead (NaN below 45
    calls, then its p95 estimate's margin alone holds it): ``own`` says which. ``at``,
    ``more`` and ``line``: for the others, the calls in all and more at which that test
    could find it lighter, none of them over ``line`` × its median
    (:func:`selection.aggregate.calls_until_lighter`; NaN for a selector trained before)."""
    evidence = model.evidence
    unknown = {"at": np.nan, "more": np.nan, "line": np.nan, "source": ""}
    if "latency_tail_ratio" not in evidence:
        return pd.DataFrame({"ratio": np.nan, "own": False, **unknown}, index=table.index)
    names = model.configs["model"].reindex(evidence["config_hash"]).to_numpy()
    here = (evidence["task_type"] == task_type).to_numpy()
    on_task = pd.Series(evidence["latency_tail_ratio"].to_numpy()[here], index=names[here])
    column = evidence.get("latency_tail_ratio_all_tasks", evidence["latency_tail_ratio"])
    anywhere = pd.Series(column.to_numpy(), index=names)
    on_task, anywhere = (r.dropna()[~r.dropna().index.duplicated()] for r in (on_task, anywhere))
    ratio = table["model"].map(on_task).fillna(table["model"].map(anywhere)).astype(float)
    source = table["model"].map(_sources(evidence[here], names[here])).fillna("").astype(str)
    if "latency_tail_lighter" not in evidence:  # selectors trained before the test
        found = pd.DataFrame({"ratio": ratio, "own": False, **unknown}, index=table.index)
        return found.assign(source=source)
    measured = evidence[here].set_index("config_hash")
    own = measured["latency_tail_lighter"].reindex(table.index).fillna(False).astype(bool)
    config_bound = measured["latency_tail_ratio_config"].reindex(table.index).astype(float)
    found = pd.DataFrame(
        {"ratio": ratio.where(~own, config_bound), "own": own, "source": source.where(~own, "")}
    )
    return found.join(_calls_until_lighter(evidence[here], names[here], table, own))


def _sources(evidence: pd.DataFrame, models: np.ndarray) -> pd.Series:
    """Per model measured on the task type (``evidence``, its rows), where its tail ratio
    comes from (:func:`selection.aggregate.tail_source`): "156 calls of its 13 configs on
    qa; its slowest, which set it, from nc-n3 (5 calls), nc-n6 (3 calls)" (calls of each run); none
    in a selector trained before."""
    if "latency_tail_runs" not in evidence:
        return pd.Series(dtype=str)
    rows = evidence.assign(model=models).drop_duplicates("model").set_index("model")
    rows = rows[rows["latency_tail_calls"].notna()]
    return pd.Series(
        {
            name: (
                f"{counted(int(row.latency_tail_calls), 'call')} of its "
                f"{counted(int(row.latency_tail_configs), 'config')} on "
                f"{row.latency_tail_over or 'all its task types'}"
                + (
                    f"; its slowest, which set it, from {row.latency_tail_runs}"
                    if row.latency_tail_runs
                    else ""
                )
            )
            for name, row in rows.iterrows()
        },
        dtype=str,
    )


def _calls_until_lighter(
    evidence: pd.DataFrame, models: np.ndarray, table: pd.DataFrame, own: pd.Series
) -> pd.DataFrame:
    """Per candidate of ``table`` not ``own`` (already held to its own tail), how many
    calls would let the lighter-tail test hold it to its own tail (:func:`_tail_ratio`):
    its row of ``evidence`` (the task type's) where it was measured, else its model's
    figure for a config never run on the task type."""
    columns = {"at": np.nan, "more": np.nan, "line": np.nan}
    if "latency_tail_lighter_at" not in evidence:  # selectors trained before
        return pd.DataFrame(columns, index=table.index)
    rows = evidence.set_index("config_hash")
    fresh = evidence.assign(model=models).drop_duplicates("model").set_index("model")
    measured = table.index.isin(rows.index)
    found = pd.DataFrame(index=table.index)
    for column in columns:
        mine = _numbers(rows[f"latency_tail_lighter_{column}"]).reindex(table.index)
        new = "at" if column == "more" else column
        theirs = table["model"].map(_numbers(fresh[f"latency_tail_new_{new}"]))
        found[column] = np.where(measured, mine, theirs).astype(float)
    found.loc[own.to_numpy(dtype=bool)] = np.nan
    return found


def _numbers(values: pd.Series) -> pd.Series:
    """A stored evidence column as numbers: a selector trained where no model had two
    configs to compare stored these columns as text, "" for each missing number
    (:func:`selection.aggregate.calls_until_lighter` gave them no type then)."""
    return pd.to_numeric(values.replace("", np.nan)).astype(float)


def _with_margin(table: pd.DataFrame, target: str) -> pd.Series:
    """The estimate raised by SAFETY_Z standard deviations (log scale): of the ensemble's
    spread for a predicted config, of the combined estimate for a measured one."""
    sd = table[f"{target}_spread"]
    if f"{target}_sd" in table:
        sd = sd.where(~table["measured"], table[f"{target}_sd"])
    return table[target] * np.exp(SAFETY_Z * sd)
