"""Outcomes: what happened after a recommendation, fed back into training.

``record_outcome`` attaches the observed quality and/or latency to a logged
recommendation (a second call replaces the first). ``outcomes_frame`` turns every
recorded outcome into one extra generation of the training frame, on a per-task-type
pseudo-suite ``outcomes:<task type>`` with ``weight`` = ``OUTCOME_WEIGHT``: an outcome
counts as half a benchmark generation, because the application judges quality its own
way rather than with the suite's metric, so outcomes inform the selector without
overriding the benchmarks. They feed the model's fit only: what an answer says a config
was measured to do (its evidence and per-case scores, the suites it was or was not run
on) is read from stored runs alone (``from_runs``), as an outcome is no case of a suite
(a `next:` line asked to measure configs "on outcomes:qa", a suite no spec can run).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from evaluation.errors import EvalError
from evaluation.spec._params import PARAMETERS
from evaluation.storage.models import utcnow
from evaluation.wording import counted
from selection._db import engine_for
from selection._request import check_engine_argument
from selection.frame import REQUIRED_COLUMNS
from selection.schema import RecommendationLog

OUTCOME_WEIGHT = 0.5
OUTCOME_EXPERIMENT = "outcomes"


class UnknownRecommendation(EvalError, LookupError):
    """No logged recommendation has this id (an answer not logged has none), or it
    recommended no configuration."""


def record_outcome(
    recommendation_id: int | None,
    *,
    quality: float | None = None,
    latency_s: float | None = None,
    engine: Engine | None = None,
    database_url: str | None = None,
) -> None:
    """Attach what happened to a recommendation: ``quality`` on the task type's metric
    scale [0, 1], ``latency_s`` as measured by the application."""
    if recommendation_id is None:  # the answer's id: None where it was not logged
        raise UnknownRecommendation(
            "this answer was not logged (its database took no write, as its `unlogged` note "
            "says, or it was refused: status 'unavailable'): there is nothing to record an "
            "outcome on"
        )
    if quality is None and latency_s is None:
        raise ValueError("give quality and/or latency_s")
    _check_number("quality", quality, "a number in [0, 1]")
    _check_number("latency_s", latency_s, "a non-negative number of seconds")
    if quality is not None and not 0 <= quality <= 1:
        raise ValueError(f"quality must lie in [0, 1], got {quality}")
    if latency_s is not None and not (math.isfinite(latency_s) and latency_s >= 0):
        raise ValueError(f"latency_s must be a non-negative number, got {latency_s}")
    check_engine_argument(engine)
    with engine_for(engine, database_url) as bound, Session(bound) as session:
        row = session.get(RecommendationLog, recommendation_id)
        if row is None:
            raise UnknownRecommendation(f"no recommendation with id {recommendation_id}")
        if row.config_hash is None:
            raise UnknownRecommendation(
                f"recommendation {recommendation_id} ({row.status}) recommended no configuration"
            )
        row.outcome_quality, row.outcome_latency_s = quality, latency_s
        row.outcome_at = utcnow()
        session.add(row)
        session.commit()


def _check_number(name: str, value: object, expected: str) -> None:
    """TypeError naming ``name`` where ``value`` is given but no number (a string such as
    "high" failed on a comparison: "'<=' not supported between instances of …")."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")


def outcomes_frame(session: Session) -> pd.DataFrame:
    """Recorded outcomes as training rows (REQUIRED_COLUMNS plus ``weight``)."""
    statement = select(RecommendationLog).where(col(RecommendationLog.outcome_at).is_not(None))
    rows = [_training_row(log) for log in session.exec(statement)]
    return pd.DataFrame(rows, columns=[*REQUIRED_COLUMNS, "weight"])


def _training_row(log: RecommendationLog) -> dict[str, Any]:
    choice = log.answer.get("choice") or {}
    params = choice.get("params") or {}
    nan = float("nan")

    def number(value: Any) -> float:
        return nan if value is None else float(value)

    return {
        "experiment": OUTCOME_EXPERIMENT,
        "config_hash": log.config_hash,
        "model": choice.get("model", ""),
        "family": choice.get("family", ""),
        "parameter_size": choice.get("parameter_size", ""),
        "quantization": choice.get("quantization", ""),
        **{
            p.name: number(params.get(p.name)) if p.numeric else params.get(p.name)
            for p in PARAMETERS
        },
        "template": choice.get("template", ""),
        "template_text": choice.get("template_text", ""),
        "task_type": log.task_type,
        "suite": f"{OUTCOME_EXPERIMENT}:{log.task_type}",
        "case_id": f"recommendation-{log.id}",
        "input_chars": number(log.answer.get("input_chars")),
        "quality": number(log.outcome_quality),
        "latency_s": number(log.outcome_latency_s),
        "ttft_s": nan,
        "tokens_per_s": nan,
        "energy_j": nan,
        "simulated": False,
        "status": "ok",
        "weight": OUTCOME_WEIGHT,
    }


def from_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` from stored runs: those of recorded outcomes left out."""
    outcome = frame["experiment"].eq(OUTCOME_EXPERIMENT) & outcome_keys(frame["suite"])
    return frame[~outcome]


def outcome_keys(keys: pd.Series) -> pd.Series:
    """Which of ``keys`` (suites, or "config|suite" keys of (config, suite) aggregates)
    are a recorded outcome's pseudo-suite (``outcomes:<task type>``) rather than a suite
    a run measured."""
    return keys.astype(str).str.match(rf"(?:[^|]*\|)?{OUTCOME_EXPERIMENT}:")


def outcomes_words(n_outcomes: int) -> str:
    """What follows a count of generations where recorded outcomes were learned from too
    (" and 2 recorded outcomes"); "" where none were."""
    return f" and {counted(n_outcomes, 'recorded outcome')}" if n_outcomes else ""
