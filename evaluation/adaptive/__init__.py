"""Progressive and adaptive evaluation: levels (smoke, subset, full) and racing, which
stops spending generations on configs that have already lost. Plain Python, no Prefect:
the evaluate flow asks :class:`Race` which configs to run on which cases, round by round.
The parts that read stored experiments (``_stored``, ``_smoke``) load on first use: they
pull in the metrics.
"""

from evaluation._lazy import lazy_exports
from evaluation.adaptive._clusters import Clustering, case_clustering
from evaluation.adaptive._elimination import Elimination, Judgement, judge, over_limit
from evaluation.adaptive._levels import LEVELS, Level, level_cases, level_work
from evaluation.adaptive._race import (
    Race,
    RaceOutcome,
    RaceRound,
    RaceSettings,
    RoundPlan,
    StopReason,
    replay,
)
from evaluation.adaptive._schedule import RaceSchedule, race_schedule, round_ends, stratified_order

__all__ = [
    "LEVELS",
    "Clustering",
    "Elimination",
    "Judgement",
    "Level",
    "Race",
    "RaceOutcome",
    "RaceRound",
    "RaceSchedule",
    "RaceSettings",
    "RaceStanding",
    "RoundPlan",
    "SmokeFailed",
    "SmokeGroup",
    "StopReason",
    "case_clustering",
    "judge",
    "level_cases",
    "level_work",
    "over_limit",
    "race_schedule",
    "race_standing",
    "replay",
    "round_ends",
    "round_markdown",
    "round_rows",
    "smoke_failure",
    "stopped_above_kept",
    "stopped_line",
    "stored_measures",
    "stored_standing",
    "stored_table",
    "stratified_order",
    "sweep_race",
]

_STORED = "evaluation.adaptive._stored"
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SmokeFailed": "evaluation.adaptive._smoke",
        "SmokeGroup": "evaluation.adaptive._smoke",
        "smoke_failure": "evaluation.adaptive._smoke",
        **{
            name: _STORED
            for name in (
                "RaceStanding",
                "race_standing",
                "round_markdown",
                "round_rows",
                "stored_measures",
                "stored_standing",
                "stored_table",
                "stopped_above_kept",
                "stopped_line",
                "sweep_race",
            )
        },
    },
    globals(),
)
