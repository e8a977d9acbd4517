"""How much of its suite an experiment ran. A subset level (`--level subset`,
`--level calibrated`, `--limit`) runs part of the suite, and every figure of such a run
is a mean over those cases only: each output says so beside the figure
(docs/calibrated-subsets.md, "Where an estimate is shown")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.storage.models import CaseRow, Experiment, Generation


@dataclass(frozen=True)
class Coverage:
    """``cases``: the distinct cases the experiment generated for; ``total``: its suite's."""

    cases: int
    total: int

    @property
    def partial(self) -> bool:
        return 0 < self.cases < self.total

    def words(self) -> str:
        """ "subset: 8 of 36 cases", or "" for a run of the whole suite."""
        return f"subset: {self.cases} of {self.total} cases" if self.partial else ""


def coverages(session: Session, experiments: Iterable[Experiment]) -> dict[int, Coverage]:
    """Each experiment's coverage (by id), in two grouped queries."""
    rows = list(experiments)
    ids = [int(e.id) for e in rows if e.id is not None]
    if not ids:
        return {}
    ran = dict(
        session.exec(
            select(Generation.experiment_id, func.count(func.distinct(Generation.case_uid)))
            .where(Generation.experiment_id.in_(ids))
            .group_by(Generation.experiment_id)
        ).all()
    )
    suites = {e.suite for e in rows}
    totals = dict(
        session.exec(
            select(CaseRow.suite, func.count())
            .where(CaseRow.suite.in_(suites))
            .group_by(CaseRow.suite)
        ).all()
    )
    return {
        int(e.id): Coverage(int(ran.get(e.id, 0)), int(totals.get(e.suite, 0)))
        for e in rows
        if e.id is not None
    }


def experiment_coverage(session: Session, experiment: Experiment) -> Coverage:
    """One experiment's coverage."""
    return coverages(session, [experiment]).get(int(experiment.id or 0), Coverage(0, 0))
