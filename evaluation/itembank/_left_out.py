"""Which stored runs an item bank leaves out: runs that did not complete, and runs their
series watch raised an ALARM on whose level was not accepted as a baseline since (a
degraded host's night: every normal night of a config scored 0.417, the bank's
"measured" said 0.337 with two such nights pooled in). ``evalflow bank --all-runs``
keeps them. Which runs a series alarmed on is kept in ``view_pages`` with the
fingerprint of the watch's inputs (``series_alarmed``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlmodel import Session

from evaluation.series.schema import SeriesRun
from evaluation.storage.models import Experiment
from evaluation.storage.pages import keep_page, stored_page
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
    alarmed: set[str] = set()
    for name in series:
        alarmed |= series_alarmed(session, name)
    return LeftOut(
        tuple(e for e in experiments if e in alarmed and e not in not_completed),
        tuple(not_completed),
    )


#: The stored answer's page in ``view_pages`` (``evaluation.storage.pages``), kept on the
#: series' first run; raise the format when the watch's rules or the payload change.
_PAGE = "series_alarmed:"
_FORMAT = 1

#: Per run of the series: what the watch reads of it, counted cheaply. ``updated_at``
#: moves when a run is registered, changes status or is accepted as a baseline; the
#: aggregates when its scores change (rescored, judged).
_INPUTS = text(
    "SELECT r.experiment, r.suite_digest, e.id, e.status, e.updated_at, e.accepted_baseline, "
    "(SELECT COUNT(*) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT SUM(a.mean) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT SUM(a.n) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT COUNT(*) FROM series_calibrated_nights c WHERE c.experiment = r.experiment), "
    "(SELECT COUNT(*) FROM series_run_models m WHERE m.experiment = r.experiment) "
    "FROM series_runs r LEFT JOIN experiments e ON e.name = r.experiment "
    "WHERE r.series = :s ORDER BY r.experiment"
)


def series_alarmed(session: Session, series: str) -> set[str]:
    """The runs of ``series`` its watch raised an ALARM on, not accepted as a baseline
    since. The whole watch costs seconds on a dozen nights, so the answer is kept with
    the fingerprint of its inputs (one query) and computed again only when a run of the
    series is added, changes or is accepted; not kept while one is running (its scores
    change under the same fingerprint)."""
    from evaluation.series import watch_series

    inputs = [list(row) for row in session.connection().execute(_INPUTS, {"s": series})]
    ids = [row[2] for row in inputs if row[2] is not None]
    keep = bool(ids) and len(ids) == len(inputs) and all(row[3] != "running" for row in inputs)
    fingerprint = json.dumps([_FORMAT, *inputs], default=str)
    if keep:
        payload = stored_page(session, min(ids), _PAGE + series, fingerprint)
        if payload is not None:
            return set(payload["alarmed"])
    watch = watch_series(session, series)
    accepted = {p.experiment for p in watch.points if p.accepted_baseline}
    alarmed = {
        night.experiment
        for stream in watch.streams
        for night in stream.nights
        if night.alarm and night.experiment not in accepted
    }
    if keep:
        keep_page(session, min(ids), _PAGE + series, fingerprint, {"alarmed": sorted(alarmed)})
    return alarmed
