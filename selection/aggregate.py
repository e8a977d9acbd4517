"""From generations to what the selector fits and shows.

The selector fits one row per (config, suite). Quality is the weighted mean of the
generations; latency p50/p95 are Harrell–Davis quantile estimates (Harrell & Davis,
Biometrika 69, 1982), because the plain sample 95th percentile of a few dozen right-skewed
latencies is biased low (about −4% at 13 generations with a log-normal spread of 0.15;
Harrell–Davis about −1%). Tokens/s and energy are means.

Each target also gets ``<target>_noise``: the sampling variance of the row's value on the
fitting scale (log for latency, speed and energy), so training can tell how much of its
error is measurement noise rather than model error:

- quality: s² / n (s² the within-row variance of per-generation quality);
- log p50, log p95: (π/2) s_log² / n and (1 + 1.645²/2) s_log² / n, the large-sample
  variances of a normal median and of μ + 1.645σ;
- log of a mean (tokens/s, energy): (s / mean)² / n (delta method).

Rows with a single generation borrow the median within-row spread of their target.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from selection.features import add_parameter_b
from selection.frame import CONFIG_COLUMNS

TARGETS = ("quality", "latency_p50", "latency_p95", "tokens_per_s", "energy_j")
KEYS = ["config_hash", "suite"]
_QUANTILE_NOISE = {"latency_p50": math.pi / 2, "latency_p95": 1 + 1.645**2 / 2}


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (config, suite): config and context features, the targets with their
    ``_noise``, ``n`` (summed weight of scored generations) and ``n_latency``."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=[*CONFIG_COLUMNS, "suite", "task_type", *TARGETS, "n"])
    grouped = ok.groupby(KEYS)
    scored = ok[ok["quality"].notna()]
    sums = scored.assign(qw=scored["quality"] * scored["weight"]).groupby(KEYS)[["qw", "weight"]]
    sums = sums.sum()
    latency = ok[ok["latency_s"] > 0]
    log_latency = np.log(latency["latency_s"]).groupby([latency[k] for k in KEYS])
    table = pd.concat(
        [
            grouped[[*CONFIG_COLUMNS[1:], "task_type"]].first(),
            grouped["input_chars"].mean(),
            (sums["qw"] / sums["weight"].where(sums["weight"] > 0)).rename("quality"),
            sums["weight"].rename("n"),
            _noise(grouped["quality"].var(), grouped["quality"].count(), 1.0, "quality"),
            harrell_davis(latency, "latency_s", 0.5).rename("latency_p50"),
            harrell_davis(latency, "latency_s", 0.95).rename("latency_p95"),
            log_latency.count().rename("n_latency"),
            *(
                _noise(log_latency.var(), log_latency.count(), factor, name)
                for name, factor in _QUANTILE_NOISE.items()
            ),
            *(_mean_and_noise(grouped[name], name) for name in ("tokens_per_s", "energy_j")),
        ],
        axis=1,
    ).reset_index()
    table["n"] = table["n"].fillna(0.0)
    table["n_latency"] = table["n_latency"].fillna(0).astype(int)
    return add_parameter_b(table)


def harrell_davis(frame: pd.DataFrame, column: str, q: float) -> pd.Series:
    """The Harrell–Davis estimate of quantile ``q`` of ``column`` per (config, suite):
    a Beta((n+1)q, (n+1)(1−q))-weighted average of the order statistics."""
    from scipy.special import betainc

    data = frame[[*KEYS, column]].dropna().sort_values([*KEYS, column])
    grouped = data.groupby(KEYS, sort=False)
    n = grouped[column].transform("size").to_numpy(dtype=float)
    i = grouped.cumcount().to_numpy(dtype=float) + 1
    a, b = (n + 1) * q, (n + 1) * (1 - q)
    weight = betainc(a, b, i / n) - betainc(a, b, (i - 1) / n)
    return data.assign(_hd=weight * data[column]).groupby(KEYS)["_hd"].sum()


def _noise(variance: pd.Series, count: pd.Series, factor: float, name: str) -> pd.Series:
    """factor · s² / n, with the median s² for rows of one generation."""
    fill = variance.median() if variance.notna().any() else 0.0
    return (factor * variance.fillna(fill) / count.where(count > 0)).rename(f"{name}_noise")


def _mean_and_noise(values: pd.core.groupby.SeriesGroupBy, name: str) -> pd.DataFrame:
    mean, count = values.mean(), values.count()
    relative = values.var() / mean.where(mean > 0) ** 2
    return pd.concat([mean.rename(name), _noise(relative, count, 1.0, name)], axis=1)


def evidence(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (config, task type): what was measured — generation counts (failed and
    simulated too), mean quality with a 95% t interval, latency quantiles, suites."""
    from scipy import stats

    keys = ["config_hash", "task_type"]
    failed = frame[frame["status"] != "ok"].groupby(keys).size().rename("n_failed")
    ok = frame[frame["status"] == "ok"]
    grouped = ok.groupby(keys)
    table = pd.concat(
        [
            grouped["quality"].count().rename("n"),
            grouped["quality"].mean().rename("quality_mean"),
            grouped["quality"].std().rename("quality_sd"),
            grouped["latency_s"].quantile(0.5).rename("latency_p50"),
            grouped["latency_s"].quantile(0.95).rename("latency_p95"),
            grouped["suite"].nunique().rename("n_suites"),
            grouped["simulated"].sum().rename("n_simulated"),
            failed,
        ],
        axis=1,
    )
    for name in ("n", "n_failed", "n_simulated"):
        table[name] = table[name].fillna(0).astype(int)
    half = stats.t.ppf(0.975, np.maximum(table["n"] - 1, 1)) * table["quality_sd"]
    half = half / np.sqrt(table["n"].where(table["n"] > 1))
    table["quality_ci_low"] = table["quality_mean"] - half
    table["quality_ci_high"] = table["quality_mean"] + half
    return table.reset_index()
