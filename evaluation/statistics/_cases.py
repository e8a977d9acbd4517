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
    """Average each (config, case) over its scored samples for one metric.

    Grouped by integer codes of the case and config labels (numbered in the labels'
    sorted order), not by the labels: the same means, counts and variances as grouping
    the strings, without copying the metric's rows or hashing their strings (100,000
    rows grouped by strings were ~20 MiB at a 100,000-generation run's comparison stage,
    issue 46)."""
    check_columns(scores)
    mask = (scores["metric"] == metric).to_numpy(dtype=bool, na_value=False)
    if not mask.any():
        known = sorted(scores["metric"].dropna().unique().tolist())
        raise ValueError(f"no score rows for metric {metric!r}; metrics present: {known}")
    case_ids = scores["case_id"][mask]
    case_codes, cases = _sorted_codes(case_ids)
    config_codes, configs = _sorted_codes(scores["config"][mask])
    values = pd.to_numeric(scores["value"][mask], errors="coerce").astype(float).to_numpy()
    keep = (case_codes >= 0) & (config_codes >= 0)  # a missing label: no group, as before
    frame = pd.DataFrame(
        {"case_id": case_codes[keep], "config": config_codes[keep], "value": values[keep]}
    )
    by = frame.groupby(["case_id", "config"], sort=True)["value"]
    stats = pd.DataFrame(
        {"mean": by.mean(), "rows": by.size(), "scored": by.count(), "var": by.var(ddof=1)}
    )
    del frame, by
    wide = stats.unstack("config")  # relabelled in place: the blocks' layout, and so
    # the sums over them (config means), stay those of the strings' table, bit for bit
    wide.index = pd.Index(cases.take(wide.index.to_numpy()), name="case_id")
    level = wide.columns.levels[1]
    wide.columns = wide.columns.set_levels(
        pd.Index(configs.take(level.to_numpy()), name="config"), level=1
    )
    means = wide["mean"]
    group = scores["group"][mask]
    return CaseTable(
        metric=metric,
        means=means,
        rows=wide["rows"].fillna(0).astype(int),
        scored=wide["scored"].fillna(0).astype(int),
        within_var=wide["var"],
        groups=_groups(case_ids, group, means.index) if group.notna().any() else None,
    )


def _sorted_codes(labels: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's number among ``labels.astype(str)``'s distinct values in sorted order
    (−1 where missing), and those values: the order grouping the strings with
    ``sort=True`` gives."""
    codes, uniques = pd.factorize(labels)
    text = pd.Index(uniques).astype(str)
    order, distinct = pd.factorize(text, sort=True)
    numbered = np.where(codes >= 0, order[codes] if len(order) else codes, -1)
    return numbered.astype(np.intp), distinct


def _groups(case_ids: pd.Series, group: pd.Series, cases: pd.Index) -> pd.Series:
    """One cluster label per case; a case without a group is its own cluster."""
    labelled = pd.DataFrame({"case_id": case_ids, "group": group})[group.notna()]
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
