"""Candidates a latency limit refuses only by their model's tail ratio, and how many
calls of each would let its own calls decide its tail: the `next:` lines naming them.

A candidate's p95 is held to at least its median × its model's measured p95 / median
bound (:func:`selection._scoring._with_tail_bounds`). Over 45–76 calls of a model on a
task type that bound is their largest latency / median, so one slow call sets it, and a
config's own calls are exempted only once they show its tail lighter
(:func:`selection.aggregate.lighter_tail`), which 12 calls cannot (0.8¹² = 6.9% > 1%).
On a real store (SmolLM2/Gemma on llama.cpp, 12 calls a config) configs measured well
inside a limit were refused so, and the answer said only "its median × 3.85". Where that
bound alone refuses a candidate the choice would otherwise take (its p95 with margin
meets the limit), the answer says so and how many more calls would let its own tail
decide (:func:`selection.aggregate.calls_until_lighter`, the test's own rule), and names
it to measure next (`recommend --write-spec`, then `plan` and `run`). Which config is
picked does not change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evaluation.statistics.precision import told_apart
from selection._candidates import params_label
from selection._choice import LATENCY_REASON, Prefer, choose


def refused_by_tail_alone(
    table: pd.DataFrame,
    found: list[tuple[str, ...]],
    feasible: pd.DataFrame,
    max_latency_s: float,
    prefer: Prefer,
    most: int,
) -> list[Any]:
    """Up to ``most`` rows of ``table`` (``found``: each row's refusals) that only the
    tail bound refuses (their p95 with margin meets ``max_latency_s``) and that the
    choice would take over every ``feasible`` candidate (rows of ``table``), the
    preferred first; only those
    whose own calls could decide their tail within ``LIGHTER_TAIL_MAX_CALLS``."""
    if "latency_p95_untailed" not in table:
        return []
    only_latency = [bool(r) and all(x.startswith(LATENCY_REASON) for x in r) for r in found]
    refused = table[
        np.array(only_latency, dtype=bool)
        & table["latency_p95_by_tail"].astype(bool).to_numpy()
        & (table["latency_p95_untailed"] <= max_latency_s).to_numpy()
        & (table["latency_tail_more"] > 0).to_numpy()
        & ~table.index.isin(feasible.index)
    ]
    taken = [i for i in refused.index if choose(table.loc[[*feasible.index, i]], prefer) == i]
    order: list[Any] = []
    rest = refused.loc[taken]
    while len(rest) and len(order) < most:
        order.append(choose(rest, prefer))
        rest = rest.drop(order[-1])
    return order


def _source(row: pd.Series) -> str:
    """ ": " and where the model's ratio comes from (``latency_tail_source``), or ""."""
    source = str(row.get("latency_tail_source", "") or "")
    return f": {source}" if source else ""


def tail_only_line(row: pd.Series, index: Any, max_latency_s: float, task_type: str) -> str:
    """The `next:` line for a candidate :func:`refused_by_tail_alone` names: what holds
    it, what its own figures say, and the calls that would let them decide its tail."""
    held, limit = told_apart(float(row["latency_p95_safe"]), max_latency_s, figures=True)
    untailed = told_apart(float(row["latency_p95_untailed"]), max_latency_s, figures=True)[0]
    more, at = int(row["latency_tail_more"]), int(row["latency_tail_at"])
    bound = (
        f"but a latency limit holds it to its median × {float(row['latency_tail_ratio']):.2f} "
        f"= {held} s, its model's measured p95 / median on {task_type} (a bound one slow "
        f"call of the model can set{_source(row)})"
    )
    calls = (
        f"none of them over {float(row['latency_tail_line']):.2f}× its median (the other "
        f"{row['model']} configs' slowest fifth)"
    )
    if bool(row.get("measured", False)):
        so_far = at - more
        return (
            f"measure more of {params_label(row)} (hash {index}): only its model's latency "
            f"tail refuses it: its p95 with margin, {untailed} s, meets the {limit} s limit, "
            f"{bound}, which its {so_far} calls are too few to overrule; after {more} more "
            f"calls ({at} in all), {calls}, its own calls decide its tail instead"
        )
    return (
        f"measure {params_label(row)} (hash {index}): only its model's latency tail refuses "
        f"it: never run on {task_type}, its predicted p95 with margin, {untailed} s, meets "
        f"the {limit} s limit, {bound}; after {at} calls, {calls}, its own calls decide its "
        "tail instead"
    )


def tail_only_next(
    table: pd.DataFrame,
    found: list[tuple[str, ...]],
    feasible: pd.DataFrame,
    max_latency_s: float | None,
    prefer: Prefer,
    task_type: str,
    most: int,
) -> list[tuple[Any, tuple[str, ...], str]]:
    """The candidates :func:`refused_by_tail_alone` names, as
    :func:`selection._measure_next.measure_next` gives its own: the row's index, no suites
    (any of the task type's: more calls on cases it ran count), the `next:` line."""
    if max_latency_s is None:
        return []
    named = refused_by_tail_alone(table, found, feasible, max_latency_s, prefer, most)
    return [(i, (), tail_only_line(table.loc[i], i, max_latency_s, task_type)) for i in named]
