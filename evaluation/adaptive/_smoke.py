"""The smoke level's verdict: did every config, host and model answer?"""

from __future__ import annotations

import pandas as pd

from evaluation.errors import EvalError


class SmokeFailed(EvalError):
    """A smoke run had failed generations: fix them before spending a full run."""


def smoke_summary(generations: pd.DataFrame, labels: dict[str, str]) -> str | None:
    """One line naming each (config, host, error) that failed and how often, or None
    when every generation succeeded. ``generations``: stored rows of the smoke cases."""
    failed = generations[generations["status"] != "ok"]
    if failed.empty:
        return None
    counts = (
        failed.assign(
            config=failed["config_hash"].map(lambda h: labels.get(h, h)),
            host=failed["host"].fillna("").replace("", "no host"),
            error=failed["error"].fillna("").str.split("\n").str[0].str.slice(0, 120),
        )
        .groupby(["config", "host", "error"], sort=True)
        .size()
    )
    parts = [f"{c} on {h}: {e} ({n}x)" for (c, h, e), n in counts.items()]
    return (
        f"smoke level failed: {len(failed)} of {len(generations)} generations did not "
        f"succeed; " + "; ".join(parts)
    )
