"""The metric names under which people's ratings and judges' verdicts are stored as
scores. A module of their own: the view's queries name them without importing what
writes them (the rating statistics: scipy; the judge: numpy, pandas)."""

from __future__ import annotations

HUMAN_PREFIX = "human_"
JUDGE_PREFIX = "judge_"


def human_metric(criterion: str) -> str:
    return f"{HUMAN_PREFIX}{criterion}"
