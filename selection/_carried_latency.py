"""A floor under the p95 a latency limit holds a config never run on the task type to: its
median measured on another task type, times the least slowdown from that task type to
this one among the configs measured on both.

The trees predict a never-run config's latency from its settings and the task type, and
where few models were run on the task type they carry another task type's over: a
newcomer's `recommend summarization --max-latency 0.3` picked sim-medium t=0.3 few_shot,
predicted p95 0.237 s (0.275 s with margin) from its qa runs (median 0.192 s), while
every config measured on both task types ran 2.85-3.36 times slower on summarization
(sim-small, the faster model, at p95 0.455 s); run, it measured p95 0.797 s. Latency
scales with the task type's outputs, so the config's own median on the other task type
times the least of those slowdowns is a figure its median on this one, and so its p95,
is at least (no margin added: it refuses only what the measurements contradict). Its own
median needs ``MIN_CALLS`` calls there, a slowdown's configs ``MIN_GENERATIONS`` calls
on each task type; over several other task types the highest floor holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.wording import counted
from selection._evidence_rule import MIN_GENERATIONS, MIN_SHARED_CASES
from selection.model import SelectorModel

MIN_CALLS = MIN_SHARED_CASES
"""Calls of the config on the other task type its median is read from."""


def carried_floor(
    model: SelectorModel, table: pd.DataFrame, task_type: str
) -> tuple[pd.Series, pd.Series]:
    """Per row of ``table``: the floor (NaN where none: measured on ``task_type``, or no
    other task type to carry from) and the words that say how it was set."""
    floor = pd.Series(np.nan, index=table.index)
    words = pd.Series("", index=table.index)
    evidence = model.evidence
    if "n_latency" not in evidence or "latency_p50" not in evidence:
        return floor, words
    calls = evidence["n_latency"].fillna(0)
    here = evidence[(evidence["task_type"] == task_type) & (calls >= MIN_GENERATIONS)]
    here = here.set_index("config_hash")["latency_p50"]
    never = ~table["measured"].astype(bool)
    others = evidence[(evidence["task_type"] != task_type) & (calls >= MIN_CALLS)]
    for other, rows in others.groupby("task_type"):
        there = rows.set_index("config_hash")
        reference = there[there["n_latency"] >= MIN_GENERATIONS]
        shared = here.index.intersection(reference.index)
        if shared.empty:
            continue
        slowdown = float((here[shared] / reference.loc[shared, "latency_p50"]).min())
        median = there["latency_p50"].reindex(table.index)
        carried = (median * slowdown).where(never)
        higher = carried > floor.fillna(-np.inf)
        floor = floor.where(~higher, carried)
        for index in table.index[higher.to_numpy(dtype=bool)]:
            words[index] = (
                f"at least its median on {other} ({median[index]:.3g} s over "
                f"{counted(int(there.loc[index, 'n_latency']), 'call')}) × {slowdown:.2f}, "
                f"the least slowdown from {other} to {task_type} of the "
                f"{counted(len(shared), 'config')} measured on both; never run on {task_type}"
            )
    return floor, words
