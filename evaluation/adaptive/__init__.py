"""Progressive and adaptive evaluation: levels (smoke, subset, full) and racing, which
stops spending generations on configs that have already lost. Plain Python, no Prefect:
the evaluate flow asks :class:`Race` which configs to run on which cases, round by round.
"""

from evaluation.adaptive.elimination import Elimination, Judgement, judge, over_limit
from evaluation.adaptive.levels import LEVELS, Level, level_cases, level_work
from evaluation.adaptive.race import (
    Race,
    RaceOutcome,
    RaceRound,
    RaceSettings,
    RoundPlan,
    StopReason,
    replay,
)
from evaluation.adaptive.schedule import RaceSchedule, race_schedule, round_ends, stratified_order

__all__ = [
    "LEVELS",
    "Elimination",
    "Judgement",
    "Level",
    "Race",
    "RaceOutcome",
    "RaceRound",
    "RaceSchedule",
    "RaceSettings",
    "RoundPlan",
    "StopReason",
    "judge",
    "level_cases",
    "level_work",
    "over_limit",
    "race_schedule",
    "replay",
    "round_ends",
    "stratified_order",
]
