"""The order of configs on a metric, best first: one function for the leaderboard (CLI,
artifacts, view) and the comparison (verdict, report), so configs tied on the mean stand
in the same order everywhere. Means equal to 12 significant digits are ties (the
leaderboard's stored means and the comparison's recomputed ones differ in the last bits);
ties go by label, unscored configs last."""

from __future__ import annotations

import math
from collections.abc import Mapping


def rank_order(
    means: Mapping[str, float | None],
    higher_is_better: bool | None = True,
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """The keys of ``means`` (config -> mean) best first, ties by ``labels[config]``
    (default: the key itself); a descriptive metric (None) is ordered high to low."""

    def key(config: str) -> tuple[bool, float, str]:
        tie = labels[config] if labels is not None else config
        mean = means[config]
        if mean is None or math.isnan(mean):
            return (True, 0.0, tie)
        value = float(f"{mean:.12g}")
        return (False, value if higher_is_better is False else -value, tie)

    return sorted(means, key=key)
