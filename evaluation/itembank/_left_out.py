"""Which stored runs an item bank leaves out: runs that did not complete, and runs their
series watch raised an ALARM on whose level was not accepted as a baseline since (a
degraded host's night: every normal night of a config scored 0.417, the bank's
"measured" said 0.337 with two such nights pooled in). ``evalflow bank --all-runs``
keeps them. Which runs a series alarmed on is the watch's kept verdict
(``evaluation.series.series_verdict``), read in one query while the series is unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from evaluation.series.schema import SeriesRun
from evaluation.storage.models import Experiment
from evaluation.storage.runs import experiment_status
from evaluation.wording import counted

#: An experiment's statuses that say its run ended without completing (one still running
#: stores its scores as it completes).
NOT_COMPLETED = ("failed", "interrupted", "cancelled", "cancelling", "crashed")


@dataclass(frozen=True)
class LeftOut:
    """The runs left out, by name: those that alarmed, those not completed."""

    alarmed: tuple[str, ...] = ()
    not_completed: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.alarmed) + len(self.not_completed)

    def note(self) -> str:
        """One line: how many runs were left out, which and why, and how to keep them."""
        parts = []
        if self.alarmed:
            parts.append(
                f"{counted(len(self.alarmed), 'run')} its series watch raised an ALARM on "
                f"({', '.join(self.alarmed)}; not accepted as a baseline)"
            )
        if self.not_completed:
            parts.append(
                f"{counted(len(self.not_completed), 'run')} not completed "
                f"({', '.join(self.not_completed)})"
            )
        return f"left out {' and '.join(parts)}: --all-runs keeps them"


def left_out(session: Session, experiments: list[str]) -> LeftOut:
    """Which of ``experiments`` (names) the bank leaves out, and why."""
    from evaluation.itembank._nights import BankEstimates
    from evaluation.series import series_verdict

    rows = session.exec(select(Experiment).where(Experiment.name.in_(experiments))).scalars()
    # a stored 'running' judged as `status` does: crashed where its process is gone
    status = {
        e.name: experiment_status(session, e).status if e.status == "running" else e.status
        for e in rows
    }
    not_completed = [e for e in experiments if status.get(e) in NOT_COMPLETED]
    series = sorted(
        set(
            session.exec(
                select(SeriesRun.series).where(SeriesRun.experiment.in_(experiments))
            ).scalars()
        )
    )
    banks = BankEstimates(session)
    alarmed = {run for name in series for run in series_verdict(session, name, banks).alarmed}
    return LeftOut(
        tuple(e for e in experiments if e in alarmed and e not in not_completed),
        tuple(not_completed),
    )
