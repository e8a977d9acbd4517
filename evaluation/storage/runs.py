"""One run at a time per experiment, and the truth about how runs end.

A run claims its experiment by name before it does anything (``claim_experiment``); a
second process that tries while the first is alive gets ``ExperimentBusy`` naming it.
A run ends with ``end_run``: completed, failed (with the reason), interrupted (a signal)
or cancelled (from Prefect's UI or API). A run
whose process died without ending (``kill -9``, a power cut) still says "running" in the
database; ``experiment_status`` checks the recorded process and reports it as crashed,
and the next run takes the claim over; a run whose cancel was requested
(``request_cancel``) reads ``cancelling`` in that state instead, for up to
``CANCEL_GRACE_S``: Prefect's runner ends the process before the flow's hook records
``cancelled``. Liveness can only be checked on the host that
ran it: elsewhere a "running" claim is believed.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlmodel import Session

from evaluation.errors import StorageError, TryLater
from evaluation.storage import run_notes
from evaluation.storage.db import insert_ignoring_conflicts
from evaluation.storage.models import Experiment, ExperimentRun, RunLive, utcnow
from evaluation.storage.snapshot import asked_url

if TYPE_CHECKING:
    from datetime import datetime

ENDINGS = ("completed", "failed", "interrupted", "cancelled")
CANCELLED_REASON = "cancelled from Prefect (the UI or the API)"
SIGNAL_REASON = "interrupted by a signal"
"""The reason of a run its own process ended on SIGINT or SIGTERM, and exits after."""
CANCEL_GRACE_S = 120.0
"""How long after its cancel was requested a run whose process is gone reads
``cancelling`` (its flow's hook still to record ``cancelled``) before ``crashed``."""


class ExperimentBusy(StorageError, TryLater):
    """Another live process is running the experiment; ``holder`` says which. The same
    command works once that run ends (:class:`TryLater`: exit 75, not bad input's 2)."""

    def __init__(self, name: str, run: ExperimentRun) -> None:
        self.holder = busy_message(name, run)
        super().__init__(
            f"{self.holder}; run the same command again once it has ended, or with --wait "
            "to wait for it"
        )


@dataclass(frozen=True)
class RunProcess:
    """The process that runs an experiment: pid, its start time and the host."""

    pid: int
    started: str
    hostname: str

    @classmethod
    def current(cls) -> RunProcess:
        pid = os.getpid()
        return cls(pid, _process_started(pid), socket.gethostname())

    def owns(self, run: ExperimentRun) -> bool:
        return (run.pid, run.pid_started, run.hostname) == (self.pid, self.started, self.hostname)


@dataclass(frozen=True)
class DeadRun:
    """A run whose process died without ending: its Prefect flow run (if it recorded
    one) and why it is known dead."""

    flow_run_id: str | None
    reason: str

    @classmethod
    def of(cls, run: ExperimentRun) -> DeadRun:
        return cls(run.flow_run_id, _gone(run))


@dataclass(frozen=True)
class ExperimentStatus:
    """What `experiments` and `show` say: ``status`` is running, completed, failed,
    interrupted, cancelled, cancelling (its cancel requested, its process gone, the end
    not recorded yet), crashed (its process is gone) or created; ``reason`` says why
    it failed or stopped."""

    status: str
    reason: str | None = None
    run: ExperimentRun | None = None


def claim_experiment(
    session: Session,
    name: str,
    process: RunProcess,
    *,
    flow_run_id: str | None = None,
    command: str | None = None,
    task_type: str | None = None,
    level: str | None = None,
    simulated: bool | None = None,
) -> DeadRun | None:
    """Make ``process`` the one running ``name``; raises ExperimentBusy when another live
    process holds it. Re-claiming by the same process while its run goes on only records
    ``flow_run_id``; once that run ended, a new one starts (a rerun in one process).
    ``command``: the command line that resumes the run, its credentials already masked
    (``redact_argv``), for `show` to print as the run would. ``task_type``: its suite's,
    for the monitor's task cards before the experiment is stored, and ``simulated``, its
    SIMULATED mark likewise. ``level``: its level's
    words (:func:`level_words`), known before its flow starts and records them: a
    `--limit 10` run starting was taken to generate every case of the suite.
    Taking over an ended run adds its seconds to ``earlier_s`` (a dead run's are not
    known). Returns the run taken over when its process had died without ending
    (``kill -9``): its Prefect flow run still says Running, for the caller to mark Crashed."""
    token = uuid.uuid4().hex
    fields = {
        "pid": process.pid,
        "pid_started": process.started,
        "hostname": process.hostname,
        "status": "running",
        "reason": None,
        "level": level,
        "command": command,
        "task_type": task_type,
        "simulated": simulated,
        "started_at": utcnow(),
        "ended_at": None,
        "cancel_requested_at": None,
    }
    insert_ignoring_conflicts(
        session,
        ExperimentRun,
        [{"experiment": name, "token": token, "flow_run_id": flow_run_id, **fields}],
    )
    run = _run(session, name)
    if run.token == token:
        return None
    if process.owns(run) and run.status == "interrupted" and run.reason == SIGNAL_REASON:
        # Signalled while its flow started: the process is exiting; its flow's claim
        # must not start the run again (left 'running', a crash, without its command).
        raise StorageError(f"{name!r} was interrupted by a signal; this process is exiting")
    if process.owns(run) and run.status == "running":
        if flow_run_id is not None:
            run.flow_run_id = flow_run_id
            session.add(run)
        return None
    if run.status == "running" and _alive(run):
        raise ExperimentBusy(name, run)
    dead = DeadRun.of(run) if run.status == "running" else None
    # Take over a finished or dead run: compare-and-set on the token we read.
    earlier = run.earlier_s + (run_seconds(run.started_at, run.ended_at) or 0.0)
    taken = session.exec(
        update(ExperimentRun)
        .where(ExperimentRun.experiment == name, ExperimentRun.token == run.token)
        .values(token=token, flow_run_id=flow_run_id, earlier_s=earlier, **fields)
    )
    if taken.rowcount != 1:
        raise ExperimentBusy(name, _run(session, name))
    return dead


def run_seconds(started: datetime | None, ended: datetime | None) -> float | None:
    """The seconds from ``started`` to ``ended``; None where either is unknown (a run
    going on, one whose process died)."""
    if started is None or ended is None:
        return None
    if (started.tzinfo is None) != (ended.tzinfo is None):  # SQLite reads naive UTC
        started, ended = started.replace(tzinfo=None), ended.replace(tzinfo=None)
    return max(0.0, (ended - started).total_seconds())


def level_words(level: str, limit: int | None = None) -> str:
    """A run's level as `experiments` shows it: "smoke", "full", "subset, limit 5"
    (``--limit``)."""
    return level if limit is None else f"{level}, limit {limit}"


def record_level(session: Session, name: str, level: str, limit: int | None = None) -> None:
    """Record the level the run of ``name`` runs at (:func:`level_words`)."""
    words = level_words(level, limit)
    session.exec(update(ExperimentRun).where(ExperimentRun.experiment == name).values(level=words))


def request_cancel(session: Session, name: str, flow_run_id: str) -> bool:
    """Record that a cancel of ``name``'s running run (flow run ``flow_run_id``) was asked
    for; whether that run was still going."""
    asked = session.exec(
        update(ExperimentRun)
        .where(
            ExperimentRun.experiment == name,
            ExperimentRun.flow_run_id == flow_run_id,
            ExperimentRun.status == "running",
        )
        .values(cancel_requested_at=utcnow())
    )
    return asked.rowcount == 1


def end_run(
    session: Session, name: str, status: str, process: RunProcess, reason: str | None = None
) -> bool:
    """Record how ``process``'s run of ``name`` ended, on the claim and the experiment.
    Does nothing (returns False) when the run is not this process's or already ended."""
    if status not in ENDINGS:
        raise ValueError(f"status must be one of {ENDINGS}, not {status!r}")
    run = session.get(ExperimentRun, name)
    if run is None or run.status != "running" or not process.owns(run):
        return False
    _end(session, run, status, reason)
    return True


def end_flow_run(session: Session, flow_run_id: str, status: str, reason: str | None) -> bool:
    """``end_run`` for the run that recorded ``flow_run_id`` (flows ending on a worker)."""
    run = session.exec(
        select(ExperimentRun).where(ExperimentRun.flow_run_id == flow_run_id)
    ).scalar_one_or_none()
    if run is None or run.status != "running":
        return False
    _end(session, run, status, reason)
    return True


def experiment_status(session: Session, experiment: Experiment) -> ExperimentStatus:
    run = session.get(ExperimentRun, experiment.name)
    status = experiment.status
    if run is None:
        return ExperimentStatus(status)
    if status == "running" and run.status == "running" and not _alive(run):
        # It may have ended without room to say so in the database (its disk full).
        # beside the file the user named: a read-only share's snapshot URL names none
        where = asked_url(session.get_bind())
        if (note := run_notes.read(where, run.experiment, run.token)) is not None:
            return ExperimentStatus(note[0], note[1], run)
        if _cancel_pending(run.cancel_requested_at):
            return ExperimentStatus("cancelling", "cancel requested; its end not recorded yet", run)
        return ExperimentStatus("crashed", _gone(run), run)
    if status == "running" and run.status in ENDINGS:  # a crashed run's, ended by the next
        return ExperimentStatus(run.status, run.reason, run)  # before its flow began
    # A run that ended before its flow began leaves the experiment as it was: its reason
    # is not the experiment's.
    return ExperimentStatus(status, run.reason if run.status == status else None, run)


def with_status(session: Session, experiment: Experiment) -> Experiment:
    """``experiment`` as shown: its ``status`` the one ``experiment_status`` judges (a
    run whose process is gone: crashed, not the stored "running"); detached from the
    session where that differs, so nothing of it is written back."""
    status = experiment_status(session, experiment).status
    if status != experiment.status:
        session.expunge(experiment)
        experiment.status = status
    return experiment


def _cancel_pending(requested: datetime | None) -> bool:
    if requested is None:
        return False
    return (utcnow() - in_utc(requested)).total_seconds() <= CANCEL_GRACE_S


def _gone(run: ExperimentRun) -> str:
    when = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
    return f"process {run.pid} on {run.hostname} (started {when} UTC) is gone"


def running_hosts(session: Session) -> dict[str, str]:
    """The URL of every host that a run going on now (its process alive where that can
    be checked) sends requests to → that experiment's name."""
    busy: dict[str, str] = {}
    rows = session.exec(select(Experiment).where(Experiment.status == "running")).scalars()
    for experiment in rows:
        if experiment_status(session, experiment).status != "running":
            continue
        for host in (experiment.spec or {}).get("hosts") or []:
            if isinstance(host, dict) and host.get("url"):
                busy.setdefault(str(host["url"]).rstrip("/"), experiment.name)
    return busy


def failure_reason(exc: BaseException, known: Sequence[str] = ()) -> str:
    """The reason stored for a run that ``exc`` ended (`show`'s Status): one line, no
    credentials (those of the ``known`` URLs found verbatim too), short (a driver's error
    may carry a statement and its parameters; see db.storage_problem). An ``EvalError``'s
    message is written for the user: without its class name (`SmokeFailed: ...`); an
    unexpected error keeps its (``RuntimeError: disk full``)."""
    from sqlalchemy.exc import SQLAlchemyError

    from evaluation.errors import EvalError
    from evaluation.redact import one_line
    from evaluation.storage.db import storage_problem

    if isinstance(exc, SQLAlchemyError):  # never the statement and its parameters
        return f"the results database: {storage_problem(exc, known)}"
    if isinstance(exc, EvalError) and str(exc):
        return one_line(str(exc), known=known)
    return one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, known=known)


def ending_of(exc: BaseException | None) -> str:
    """The status of a run that ``exc`` ended: ``interrupted`` where it was stopped for
    later (``TryLater``: its results database stayed locked by another process's write,
    its Prefect API stayed busy; nothing to fix, its data as complete as they were; the
    rerun resumes it), else ``failed``."""
    from evaluation.errors import TryLater

    return "interrupted" if isinstance(exc, TryLater) else "failed"


def busy_message(name: str, run: ExperimentRun) -> str:
    return f"experiment {name!r} is already running: {holder_words(run)}"


def finish_first(state: ExperimentStatus) -> str:
    """What a run not completed needs before a reader can use it (`gate`, `baseline
    accept`): a running one, to be waited for (a rerun is refused while it runs:
    ``ExperimentBusy``); any other, to be resumed by a rerun (newcomer F13: a running
    candidate was told to rerun its `evalflow run`)."""
    return still_running(state) or "finish it first (rerun its `evalflow run` to resume it)"


def still_running(state: ExperimentStatus) -> str | None:
    """For a running run, what to do instead of rerunning it, naming its process where
    known; None for any other."""
    if state.status != "running":
        return None
    held = f"{holder_words(state.run)}; " if state.run is not None else ""
    return f"wait for it to finish ({held}a rerun is refused while it runs)"


def holder_words(run: ExperimentRun) -> str:
    """Which process holds ``run``'s claim and since when ("process 11213 on box, flow run
    f825..., since 2026-11-27 23:43:23 UTC"): the refusal of a second run and `status`
    name it alike."""
    flow_run = f", flow run {run.flow_run_id}" if run.flow_run_id else ""
    when = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
    return f"process {run.pid} on {run.hostname}{flow_run}, since {when} UTC"


def starting_words(run: ExperimentRun) -> str:
    """What `status`, `experiments`, the monitor and its pages say of a starting run:
    its claim's holder."""
    return f"{holder_words(run)}; no generation yet"


def starting_refusal(session: Session, name: str) -> str | None:
    """For an experiment not stored yet whose run is starting (``starting_runs``), what a
    command that needs it says instead of "no experiment named …" (recheck R16: `status`
    showed it starting while `gate`, `show` and `baseline accept` said it did not exist);
    None for any other."""
    claims = starting_runs(session, name)
    if not claims:
        return None
    return (
        f"experiment {name!r} is starting ({starting_words(claims[0])}): nothing of it is "
        "stored yet; wait for it to finish (a rerun is refused while it runs)"
    )


def starting_runs(session: Session, name: str | None = None) -> list[ExperimentRun]:
    """The claims (of ``name`` only, where given) of runs still starting: their process
    alive, as ``claim_experiment`` judges it before refusing a second run, while their
    experiment is not stored as running yet, or is stored as running with an earlier
    run's live row (a crashed run's: this one has none yet). A run claims its experiment
    before Prefect starts and its flow registers it (seconds, ~20 under load): a second
    run is refused from the claim on, and `status`, `experiments`, the metrics and the
    monitor show the run as starting from then on."""
    statement = (
        select(ExperimentRun, Experiment.status, RunLive)
        .outerjoin(Experiment, Experiment.name == ExperimentRun.experiment)
        .outerjoin(RunLive, RunLive.experiment == ExperimentRun.experiment)
        .where(ExperimentRun.status == "running")
    )
    if name is not None:
        statement = statement.where(ExperimentRun.experiment == name)
    statement = statement.order_by(ExperimentRun.started_at)
    return [
        run
        for run, stored, live in session.exec(statement).all()
        if (stored != "running" or _earlier_live_row(live, run)) and _alive(run)
    ]


def _earlier_live_row(live: RunLive | None, run: ExperimentRun) -> bool:
    """Whether ``live`` started before ``run`` claimed its experiment: an earlier run's
    (one that crashed, its experiment left stored as running), not this one's."""
    return live is not None and in_utc(live.started_at) < in_utc(run.started_at)


def in_utc(value: datetime) -> datetime:
    """A stored time in UTC (SQLite hands them back without their zone)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _end(session: Session, run: ExperimentRun, status: str, reason: str | None) -> None:
    run.status = status
    run.reason = reason
    run.ended_at = utcnow()
    session.add(run)
    # Only an experiment a run set running (its flow began): a run that failed before,
    # as a resume whose Prefect API did not answer, leaves a completed one completed.
    session.exec(
        update(Experiment)
        .where(Experiment.name == run.experiment, Experiment.status == "running")
        .values(status=status, updated_at=utcnow())
    )


def _run(session: Session, name: str) -> ExperimentRun:
    statement = select(ExperimentRun).where(ExperimentRun.experiment == name)
    return session.exec(statement.execution_options(populate_existing=True)).scalar_one()


def _alive(run: ExperimentRun) -> bool:
    """False only when the run's host is this one and its process is gone (or its pid
    now belongs to a process started at another time)."""
    if run.hostname != socket.gethostname():
        return True
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not run.pid_started or _process_started(run.pid) == run.pid_started


def _process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), else ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]
