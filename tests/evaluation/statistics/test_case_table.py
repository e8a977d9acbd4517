"""``case_table`` groups integer codes of the labels (issue 46: less memory at a run's
comparison stage): the same tables as grouping the label strings, on many inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.statistics import case_table


def _by_strings(scores: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame | pd.Series | None]:
    """The tables as the strings grouped them (case_table before the codes)."""
    rows = scores[scores["metric"] == metric]
    frame = pd.DataFrame(
        {
            "config": rows["config"].astype(str),
            "case_id": rows["case_id"].astype(str),
            "value": pd.to_numeric(rows["value"], errors="coerce").astype(float),
        }
    )
    by = frame.groupby(["case_id", "config"], sort=True)["value"]
    stats = pd.DataFrame(
        {"mean": by.mean(), "rows": by.size(), "scored": by.count(), "var": by.var(ddof=1)}
    )
    wide = stats.unstack("config")
    labelled = rows.loc[rows["group"].notna(), ["case_id", "group"]]
    groups = None
    if not labelled.empty:
        first = labelled.astype(str).groupby("case_id")["group"].first()
        cases = wide.index
        groups = pd.Series(cases.map(first), index=cases, dtype=object)
        alone = groups.isna()
        groups[alone] = ["\x00case:" + c for c in cases[alone]]
    return {
        "means": wide["mean"],
        "rows": wide["rows"].fillna(0).astype(int),
        "scored": wide["scored"].fillna(0).astype(int),
        "within_var": wide["var"],
        "groups": groups,
    }


def _scores(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    configs = [f"cfg {c} t={c / 10}" for c in rng.permutation(int(rng.integers(1, 9)))]
    ids: list[object] = [f"q{i}" for i in range(int(rng.integers(1, 60)))]
    if seed % 3 == 0:
        ids = list(range(len(ids)))  # numbers: their strings sort 1, 10, 2
    samples = rng.integers(1, 4, n)
    values: list[object] = list(np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)))
    if seed % 4 == 1:
        values = [str(v) if i % 5 else "not a number" for i, v in enumerate(values)]
    frame = pd.DataFrame(
        {
            "config": rng.choice(configs, n),
            "case_id": [ids[i] for i in rng.integers(0, len(ids), n)],
            "sample_index": samples,
            "group": rng.choice(["g1", "g2", None], n) if seed % 2 else None,
            "metric": rng.choice(["acc", "latency_s"], n),
            "value": values,
        }
    )
    if seed % 5 == 2:
        frame["config"] = frame["config"].astype("str")
        frame["case_id"] = frame["case_id"].astype("str")
    return frame


@pytest.mark.parametrize("seeds", [range(0, 6), range(6, 12)])
def test_the_tables_equal_grouping_the_strings(seeds):
    for seed in seeds:
        _check(_scores(seed))


def _check(scores: pd.DataFrame) -> None:
    for metric in scores["metric"].unique():
        table, want = case_table(scores, metric), _by_strings(scores, metric)
        for name in ("means", "rows", "scored", "within_var"):
            got = getattr(table, name)
            pd.testing.assert_frame_equal(got, want[name], check_exact=True)
            # laid out alike: sums over the table (config means) are equal bit for bit
            assert got.to_numpy().flags.f_contiguous == want[name].to_numpy().flags.f_contiguous
            pd.testing.assert_series_equal(got.mean(axis=0), want[name].mean(axis=0), rtol=0)
        if want["groups"] is None:
            assert table.groups is None
        else:
            pd.testing.assert_series_equal(table.groups, want["groups"], check_exact=True)
