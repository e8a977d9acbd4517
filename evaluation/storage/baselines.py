"""Accepted baselines. Experiments form a series (``evaluation.series``: the one a run
joined, else its spec's ``name``, so the on-demand sweep ``qa-ollama`` and its nightly
runs ``qa-ollama-nightly-<date>`` are one series); at most one experiment per series is
the accepted baseline the nightly check compares with.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.series._series import series_of_experiment
from evaluation.storage.models import Experiment, utcnow
from evaluation.storage.repository import get_experiment
from evaluation.storage.runs import experiment_status, finish_first


@dataclass(frozen=True)
class Acceptance:
    experiment: str
    series: str
    replaced: str | None  # the baseline accepted before, if another one


def accept_baseline(session: Session, name: str) -> Acceptance:
    """Make experiment ``name`` its series' accepted baseline (the previous one, if any,
    is no longer accepted). Only a completed experiment can be a baseline."""
    experiment = get_experiment(session, name)
    state = experiment_status(session, experiment)  # crashed, as `status` says
    if state.status != "completed":
        raise StorageError(
            f"experiment {name!r} is {state.status}, not completed: {finish_first(state)}; "
            "only a completed run can be a baseline"
        )
    series = series_of_experiment(session, experiment)
    replaced = None
    for other in _accepted(session):
        if other.id != experiment.id and series_of_experiment(session, other) == series:
            other.accepted_baseline = False
            session.add(other)
            replaced = other.name
    experiment.accepted_baseline = True
    experiment.updated_at = utcnow()
    session.add(experiment)
    session.flush()
    return Acceptance(experiment=name, series=series, replaced=replaced)


def accepted_baseline(session: Session, series: str, *, exclude: str | None = None) -> str | None:
    """The accepted baseline of ``series`` (its experiment name), or None."""
    names = [
        e.name
        for e in _accepted(session)
        if e.name != exclude and series_of_experiment(session, e) == series
    ]
    return names[-1] if names else None


def no_baseline_reason(session: Session, series: str, experiment: str) -> str:
    """Why ``experiment`` has no baseline to compare with in ``series``: it is the accepted
    baseline itself (a rerun that resumed it), or the series has none."""
    if accepted_baseline(session, series) == experiment:
        return f"{experiment} is itself the accepted baseline of {series}"
    return f"{series} has no accepted baseline"


def _accepted(session: Session) -> list[Experiment]:
    statement = (
        select(Experiment)
        .where(Experiment.accepted_baseline.is_(True))
        .order_by(Experiment.updated_at)
    )
    return list(session.exec(statement).scalars())
