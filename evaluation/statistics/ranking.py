"""The order of configs on a metric, best first: one function for the leaderboard (CLI,
artifacts, view) and the comparison (verdict, report), so configs tied on the mean stand
in the same order everywhere. Means equal to 12 significant digits are ties (the
leaderboard's stored means and the comparison's recomputed ones differ in the last bits).
Ties go by what a user would pick between equals (``tie_keys``): a config flagged for
echoing its prompt after one that is not, then the lower median latency, then the label;
unscored configs last."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# A config is flagged for echoing when at least this share of its outputs echo the
# prompt (the ``echoes_prompt`` metric; evaluation/metrics/_echo.py).
ECHO_FLAG_SHARE = 0.25
TieKey = tuple[bool, float]


def tie_keys(rows: Iterable[Mapping[str, Any]], name: str = "config") -> dict[str, TieKey]:
    """Per config (``row[name]``): (flagged for echoing, median latency) from the
    ``echoes_prompt`` and ``latency_p50_s`` values where the rows have them (one row per
    config: the leaderboard's, the comparison's facts); unknown is (False, inf)."""
    keys = {}
    for row in rows:
        echo, latency = (_number(row.get(k)) for k in ("echoes_prompt", "latency_p50_s"))
        keys[str(row[name])] = (
            echo >= ECHO_FLAG_SHARE,
            math.inf if math.isnan(latency) else latency,
        )
    return keys


def _number(value: Any) -> float:
    """``value`` as a number; NaN when it is none (as ``pandas.to_numeric`` coerces)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def rank_order(
    means: Mapping[str, float | None],
    higher_is_better: bool | None = True,
    labels: Mapping[str, str] | None = None,
    ties: Mapping[str, TieKey] | None = None,
) -> list[str]:
    """The keys of ``means`` (config -> mean) best first; ties by ``ties[config]``
    (``tie_keys``), then by ``labels[config]`` (default: the key itself); a descriptive
    metric (None) is ordered high to low."""

    def key(config: str) -> tuple[bool, float, TieKey, str]:
        label = labels[config] if labels is not None else config
        tie = (ties or {}).get(config, (False, math.inf))
        mean = means[config]
        if mean is None or math.isnan(mean):
            return (True, 0.0, tie, label)
        value = float(f"{mean:.12g}")
        return (False, value if higher_is_better is False else -value, tie, label)

    return sorted(means, key=key)
