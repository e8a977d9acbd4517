"""Accepted baselines. Experiments form a series (``evaluation.series``: the one a run
joined, else its spec's ``name``, so the on-demand sweep ``qa-ollama`` and its nightly
runs ``qa-ollama-nightly-<date>`` are one series). Every run accepted in a series stays
accepted: the series' watch applies each accept in the series' order (a later accept
never undoes an earlier one's restart), and the series' baseline, the one run the
nightly check and `gate` compare with and `series`, `trends` and the monitor name, is
its latest accepted run. A mistaken accept is withdrawn (``withdraw_baseline``): the
other accepts stay. A database written before kept one accepted run per series, and
reads as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.series._series import series_names
from evaluation.storage.models import Experiment, utcnow
from evaluation.storage.repository import get_experiment
from evaluation.storage.runs import experiment_status, finish_first

#: How the accepts of a series act together, said where a run is accepted beside others.
IN_ORDER = "every accept stays in effect, applied in the series' order"


@dataclass(frozen=True)
class Acceptance:
    experiment: str
    series: str
    replaced: str | None  # the series' baseline before, when this accept made a new one
    earlier: tuple[str, ...] = ()  # the runs accepted before it in the series, still accepted
    later: tuple[str, ...] = ()  # runs of the series after it, accepted before: still its baseline
    already: bool = False  # it was accepted already: nothing changed

    @property
    def baseline(self) -> str:
        """The series' baseline now: the latest of its accepted runs."""
        return self.later[-1] if self.later else self.experiment


def accept_baseline(session: Session, name: str, *, write: bool = True) -> Acceptance:
    """Accept experiment ``name`` in its series: it stays accepted with every run accepted
    there before, and the latest of them is the series' baseline. Only a completed
    experiment can be accepted; accepting one again changes nothing. ``write=False``
    only checks, and says what accepting would do."""
    experiment = get_experiment(session, name)
    state = experiment_status(session, experiment)  # crashed, as `status` says
    if state.status != "completed":
        raise StorageError(
            f"experiment {name!r} is {state.status}, not completed: {finish_first(state)}; "
            "only a completed run can be a baseline"
        )
    series = series_names(session, [experiment])[experiment.name]
    others = [e for e in _accepted_in(session, series) if e.id != experiment.id]
    earlier = tuple(e.name for e in others if _order(e) < _order(experiment))
    later = tuple(e.name for e in others if _order(e) > _order(experiment))
    if experiment.accepted_baseline:
        return Acceptance(name, series, None, earlier, later, already=True)
    replaced = None if later or not earlier else earlier[-1]
    if not write:
        return Acceptance(name, series, replaced, earlier, later)
    experiment.accepted_baseline = True
    experiment.updated_at = utcnow()
    session.add(experiment)
    session.flush()
    return Acceptance(name, series, replaced, earlier, later)


@dataclass(frozen=True)
class Withdrawal:
    experiment: str
    series: str
    baseline: str | None  # the series' baseline now: its latest run still accepted, or None
    was_baseline: bool  # it was the series' baseline
    others: tuple[str, ...] = ()  # the runs still accepted in the series, in its order


def withdraw_baseline(session: Session, name: str, *, write: bool = True) -> Withdrawal:
    """Withdraw experiment ``name``'s accept in its series (a mistaken one: accepting
    another run no longer undoes it): the series' watch applies the accepts that remain,
    and the latest of them is its baseline. A run that does not exist or is not accepted
    is refused (StorageError) before anything is written; ``write=False`` only checks,
    and says what withdrawing would leave."""
    experiment = get_experiment(session, name)
    series = series_names(session, [experiment])[experiment.name]
    accepted = [e.name for e in _accepted_in(session, series)]
    if not experiment.accepted_baseline:
        held = (
            f"its accepted runs: {', '.join(accepted)}"
            if accepted
            else f"{series} has no accepted run"
        )
        raise StorageError(f"{name} is not accepted in {series}: nothing to withdraw ({held})")
    others = tuple(run for run in accepted if run != name)
    withdrawal = Withdrawal(
        name, series, others[-1] if others else None, accepted[-1] == name, others
    )
    if write:
        experiment.accepted_baseline = False
        experiment.updated_at = utcnow()  # the watch's kept verdict is computed again
        session.add(experiment)
        session.flush()
    return withdrawal


def take_the_write(session: Session, name: str) -> None:
    """Write experiment ``name``'s row as it is, up front, where a command computes for
    seconds (the series' watch) before it writes its choice about that run: a database
    that takes no write here (a ``mode=ro`` URL, a read-only file, a read-only
    PostgreSQL transaction) refuses at once, in the words the choice's write gets."""
    table = Experiment.__table__
    session.connection().execute(
        update(table)
        .where(table.c.name == name)
        .values(accepted_baseline=table.c.accepted_baseline)
    )


def withdrawn_words(withdrawal: Withdrawal) -> str:
    """What ``withdraw_baseline`` did, in a line (`evalflow baseline withdraw`): the
    series' baseline now (the latest run still accepted, or none)."""
    w = withdrawal
    if w.baseline is None:
        return (
            f"{w.experiment} is no longer accepted in {w.series}; {w.series} has no accepted "
            "baseline now"
        )
    now = (
        f"its baseline is now {w.baseline} (was {w.experiment})"
        if w.was_baseline
        else f"its baseline stays {w.baseline}"
    )
    return (
        f"{w.experiment} is no longer accepted in {w.series}; {now}; the other accepts stay in "
        "effect, applied in the series' order"
    )


def accepted_words(acceptance: Acceptance) -> str:
    """What ``accept_baseline`` did, in a line (`evalflow baseline accept`): the series'
    baseline now, and that the accepts before stay in effect; a later accepted run that
    stays the baseline; or that nothing changed."""
    a = acceptance
    if a.already and a.later:
        return (
            f"{a.experiment} is already accepted in {a.series} (its baseline is {a.baseline}, "
            "a later run): nothing changed"
        )
    if a.already:
        return f"{a.experiment} is already the accepted baseline of {a.series}: nothing changed"
    if a.later:
        return (
            f"{a.experiment} is accepted in {a.series}; {a.baseline}, a later run accepted "
            f"before, stays its baseline; {IN_ORDER}"
        )
    was = f" (was {a.replaced}; {IN_ORDER})" if a.replaced else ""
    return f"{a.experiment} is now the accepted baseline of {a.series}{was}"


def accepted_baseline(session: Session, series: str, *, exclude: str | None = None) -> str | None:
    """The baseline of ``series``: its latest accepted run (its experiment name), or None;
    None too when that is ``exclude`` (a rerun that resumed it has no baseline of its own
    to compare with, as when a series kept one accepted run)."""
    accepted = _accepted_in(session, series)
    latest = accepted[-1].name if accepted else None
    return None if latest == exclude else latest


def accepted_runs(session: Session, series: str) -> list[str]:
    """Every accepted run of ``series``, in the series' order (its watch applies them so;
    the last is its baseline)."""
    return [e.name for e in _accepted_in(session, series)]


def no_baseline_reason(session: Session, series: str, experiment: str) -> str:
    """Why ``experiment`` has no baseline to compare with in ``series``: it is the accepted
    baseline itself (a rerun that resumed it), or the series has none."""
    if accepted_baseline(session, series) == experiment:
        return f"{experiment} is itself the accepted baseline of {series}"
    return f"{series} has no accepted baseline"


def _accepted_in(session: Session, series: str) -> list[Experiment]:
    """The accepted runs of ``series``, in the series' order (``grouped_experiments``':
    when each was made)."""
    statement = select(Experiment).where(Experiment.accepted_baseline.is_(True))
    accepted = list(session.exec(statement).scalars())
    named = series_names(session, accepted)
    return sorted((e for e in accepted if named[e.name] == series), key=_order)


def _order(experiment: Experiment) -> tuple:
    return (experiment.created_at, experiment.id)
