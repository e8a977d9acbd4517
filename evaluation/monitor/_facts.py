"""One run's facts, as the live page, its JSON and `evalflow status` show them. Apart
from the pages (``_pages``) so that `status` reads them without importing FastAPI and
Jinja2 (~0.15 s of its start-up)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from evaluation.monitor._home import live_facts
from evaluation.monitor._summary import stale_ids, store_summary
from evaluation.storage.models import Experiment, ExperimentRun, RunLive, RunSummary
from evaluation.storage.repository import get_experiment, stored_experiment
from evaluation.storage.runs import experiment_status, starting_runs, starting_words


def run_facts(session: Session, experiment: str) -> dict[str, Any]:
    """One experiment's run: status (with why it stopped), the live figures while it
    runs, its summary after; a run still starting (``starting_runs``: its experiment
    maybe not stored yet, or a crashed run's live row left) as "starting", with which
    process holds its claim since when. An unknown experiment raises ``StorageError``."""
    starting = starting_runs(session, experiment)
    if starting:
        return _starting(starting[0], stored_experiment(session, experiment))
    row = get_experiment(session, experiment)
    state = experiment_status(session, row)
    if state.status != "running" and row.id in stale_ids(session, only=[row.id], ended=[row.name]):
        store_summary(session, int(row.id))
    live = session.get(RunLive, row.name)
    summary = session.exec(
        select(RunSummary).where(RunSummary.experiment_id == row.id)
    ).scalar_one_or_none()
    return {
        "name": row.name,
        "status": state.status,
        "reason": state.reason,
        "task_type": row.task_type,
        "simulated": row.simulated,
        "live": live_facts(row, live, state.run) if state.status == "running" else None,
        "summary": _summary_json(summary),
    }


def _starting(run: ExperimentRun, stored: Experiment | None) -> dict[str, Any]:
    return {
        "name": run.experiment,
        "status": "starting",
        "reason": starting_words(run),
        "task_type": stored.task_type if stored else run.task_type or "",
        "simulated": stored.simulated if stored else bool(run.simulated),
        "live": None,
        "summary": None,
    }


def _summary_json(summary: RunSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    out = summary.model_dump(exclude={"updated_at"})
    for key in ("started_at", "ended_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat(timespec="seconds")
    return out
