"""Which measured configs an answer on a task type considers.

Where the task type has configs measured on real runs, the simulated backend's are no
picks (:func:`selection._candidates.real_only`), so they do not speak for the answer
either: not in the metric the spec `--write-spec` writes reads quality from, not in the
note on mixed metrics, not in the baseline of the "why" line. After `evalflow retrain
--include-simulated` a newcomer's real qa spec put the demo's ``exact_match`` first (12
simulated configs outvoted 6 real ones on ``contains``), with 12 SIMULATED configs said
to be left out.
"""

from __future__ import annotations

import pandas as pd


def simulated(evidence: pd.DataFrame) -> pd.Series:
    """Per evidence row, whether the SIMULATED backend measured it (even partly)."""
    if "n_simulated" not in evidence:
        return pd.Series(False, index=evidence.index)
    return evidence["n_simulated"].fillna(0) > 0


def considered(evidence: pd.DataFrame, task_type: str | None = None) -> pd.DataFrame:
    """The rows of ``evidence`` (on ``task_type``, or on every task type with None) an
    answer considers: the real ones where there are any, else all of them (the
    simulated demo)."""
    rows = evidence if task_type is None else evidence[evidence["task_type"] == task_type]
    real = rows[~simulated(rows)]
    return rows if real.empty else real
