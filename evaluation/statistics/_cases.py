"""Long score rows → one score per (case, config): the unit every statistic works on.

Miller (2024, "Resampling" in the variance-reduction section) averages the K samples
drawn for a case before applying the CLT; the case, not the sample, is the unit drawn
from the super-population. A NaN value is a sample that could not be scored: it is
dropped, and a case whose samples are all NaN counts as unscorable for that config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("config", "case_id", "sample_index", "group", "metric", "value")

NOT_RUN = "no row for {config}"
UNSCORABLE = "unscorable (NaN) for {config}"


@dataclass(frozen=True)
class CaseTable:
    """One metric's scores, one row per case, one column per config.

    ``means``: within-case mean of the scored samples (NaN when the case has no score);
    ``rows``: rows present, scored or not; ``scored``: samples with a value;
    ``within_var``: within-case sample variance (NaN with fewer than two samples);
    ``groups``: cluster label per case (None when the suite has no groups).
    """

    metric: str
    means: pd.DataFrame
    rows: pd.DataFrame
    scored: pd.DataFrame
    within_var: pd.DataFrame
    groups: pd.Series | None

    @property
    def configs(self) -> list[str]:
        return list(self.means.columns)

    def exclusion_reasons(self, config: str, cases: pd.Index) -> list[str | None]:
        """Why ``config`` has no usable score for each of ``cases`` (None where it has
        one). Whole columns at once: pandas' per-cell lookups (~0.1 ms each) made up
        half of a sweep's comparison stage."""
        rows = self.rows[config].reindex(cases).to_numpy()
        scored = self.scored[config].reindex(cases).to_numpy()
        not_run, unscorable = NOT_RUN.format(config=config), UNSCORABLE.format(config=config)
        return [
            not_run if r == 0 else unscorable if s == 0 else None
            for r, s in zip(rows, scored, strict=True)
        ]


def check_columns(scores: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"score rows lack column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")


def case_table(scores: pd.DataFrame, metric: str) -> CaseTable:
    """Average each (config, case) over its scored samples for one metric."""
    check_columns(scores)
    rows = scores[scores["metric"] == metric]
    if rows.empty:
        known = sorted(scores["metric"].dropna().unique().tolist())
        raise ValueError(f"no score rows for metric {metric!r}; metrics present: {known}")
    values = pd.to_numeric(rows["value"], errors="coerce").astype(float)
    frame = pd.DataFrame(
        {
            "config": rows["config"].astype(str),
            "case_id": rows["case_id"].astype(str),
            "value": values,
        }
    )
    by = frame.groupby(["case_id", "config"], sort=True)["value"]
    stats = pd.DataFrame(
        {"mean": by.mean(), "rows": by.size(), "scored": by.count(), "var": by.var(ddof=1)}
    )
    wide = stats.unstack("config")
    means = wide["mean"]
    counts = wide["rows"].fillna(0).astype(int)
    scored = wide["scored"].fillna(0).astype(int)
    within = wide["var"]
    return CaseTable(
        metric=metric,
        means=means,
        rows=counts,
        scored=scored,
        within_var=within,
        groups=_groups(rows, means.index),
    )


def _groups(rows: pd.DataFrame, cases: pd.Index) -> pd.Series | None:
    """One cluster label per case; a case without a group is its own cluster."""
    labelled = rows.loc[rows["group"].notna(), ["case_id", "group"]]
    if labelled.empty:
        return None
    first = labelled.astype(str).groupby("case_id")["group"].first()
    groups = pd.Series(cases.map(first), index=cases, dtype=object)
    alone = groups.isna()
    groups[alone] = ["\x00case:" + c for c in cases[alone]]
    return groups


def is_constant(x: np.ndarray) -> bool:
    """True when all values are equal up to floating-point rounding (a − (a + 1) is not
    exactly constant in floating point, and scipy warns on such near-constant data)."""
    if x.size == 0:
        return True
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))))
