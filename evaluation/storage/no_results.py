"""What a run with nothing scored yet says (`show`, `status`, the run's web page): how
many generations are stored and scored, its status, and the command that resumes it,
or starts it over where nothing was stored, as `run` printed it on its way out; a run
still running, to wait for it."""

from __future__ import annotations

import shlex

from sqlmodel import Session

from evaluation.storage.models import Experiment, ExperimentRun
from evaluation.storage.repository import completed_count, has_generations, scored_count
from evaluation.storage.runs import ExperimentStatus, still_running


def resume_command(experiment: Experiment, run: ExperimentRun | None = None) -> str:
    """The command that resumes ``experiment``, as `run` prints it on an interrupt: the
    command line its last run (``run``, its ``experiment_runs`` row) stored, masked as
    printed; else (a flow started otherwise, a run from before it was stored) one built
    from the stored facts, ``--experiment`` only for an experiment named apart from its
    spec."""
    if run is not None and run.command:
        return run.command
    command = ["evalflow", "run", experiment.spec_path or "SPEC"]
    if (experiment.spec or {}).get("name") != experiment.name:
        command += ["--experiment", experiment.name]
    return shlex.join(command)


def no_results_line(session: Session, experiment: Experiment, state: ExperimentStatus) -> str:
    """'No results for NAME yet: N generations stored, none scored (status S); resume
    with: COMMAND' for an experiment without a leaderboard ('wait for it to finish (…)'
    where it is running: a rerun would be refused)."""
    stored = completed_count(session, experiment.id)
    scored = scored_count(session, experiment.id) if stored else 0
    # as `run` says where it stopped before anything (a failed one too) was stored
    begun = bool(stored) or has_generations(session, experiment.name)
    # scored but not aggregated: the run stopped between its scoring and its leaderboard
    how_far = f"{scored} of them scored, no leaderboard yet" if scored else "none scored"
    then = still_running(state) or (
        f"{'resume' if begun else 'start it over'} with: {resume_command(experiment, state.run)}"
    )
    return (
        f"No results for {experiment.name!r} yet: {stored} generations stored, {how_far} "
        f"(status {state.status}); {then}"
    )
