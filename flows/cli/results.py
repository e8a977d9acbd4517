"""Result commands: experiments, show, export. They only read the results database, so
they import no Prefect and answer at once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evaluation.export_levels import FORMATS, LEVELS
from flows.cli import options
from flows.cli._database import follow_up, missing_default_database, open_engine, open_reader
from flows.cli._width import fitted, fitted_command, known_columns, terminal_columns

if TYPE_CHECKING:
    from datetime import datetime

    from sqlmodel import Session

    from evaluation.compare._leaderboard import Leaderboard
    from evaluation.storage.models import Experiment
    from evaluation.storage.runs import ExperimentStatus

SHOWN_REASONS = 5


def failure_lines(session, experiment, argv: Sequence[str] = ()) -> list[str]:
    """The failed generations of ``experiment``: how many, their distinct reasons with
    counts (the first few), and where to read every one (with the ``--database`` of the
    command line ``argv``)."""
    from evaluation.errors import without_class_name
    from evaluation.redact import one_line
    from evaluation.storage.repository import failure_reasons

    said: dict[str, int] = {}  # the reasons as the user reads them: no class names (F13)
    for reason, n in failure_reasons(session, experiment.id):
        words = without_class_name(reason)
        said[words] = said.get(words, 0) + n
    reasons = sorted(said.items(), key=lambda x: (-x[1], x[0]))
    if not reasons:
        return []
    total = sum(n for _, n in reasons)
    lines = [f"{total} failed generation{'s' * (total != 1)}, by reason:"]
    lines += [f"  {n} x {one_line(reason, limit=300)}" for reason, n in reasons[:SHOWN_REASONS]]
    if len(reasons) > SHOWN_REASONS:
        lines.append(f"  ... and {len(reasons) - SHOWN_REASONS} other reasons")
    view = follow_up(["view", experiment.name], argv)
    export = follow_up(["export", experiment.name, "--level", "generations"], argv)
    lines.append(f"every one: {view} (or {export})")
    return lines


def cmd_show(args: argparse.Namespace) -> int:
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from evaluation.storage.runs import experiment_status

    with session_scope(open_reader(args)) as session:
        experiment = get_experiment(session, args.experiment)
        state = experiment_status(session, experiment)
        shown = results_text(session, experiment, state, wide=args.wide, argv=args.argv)
    reason = f": {state.reason}" if state.reason else ""
    if state.status != "completed":
        print(fitted(f"Status: {state.status}{reason}"))
    print(shown)
    return 0  # the experiment exists: nothing scored yet is no error


def results_text(
    session: Session,
    experiment: Experiment,
    state: ExperimentStatus,
    *,
    wide: bool = False,
    failures: bool = True,
    argv: Sequence[str] = (),
) -> str:
    """What a run has to show (`show`, and `status` once it ended): its leaderboard, or
    how many generations are stored and scored when it has none; the resume command
    when it stopped before it ended. ``failures``: the failed generations' reasons too
    (`status` prints its own), where to read them with the ``--database`` of ``argv``.
    The lines that are not the table's wrap where the width is known (the resume line
    was 151 characters at 80 columns)."""
    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.storage.no_results import no_results_line, resume_command

    board = load_leaderboard(session, experiment.name)
    status, run = state.status, state.run
    failed = failure_lines(session, experiment, argv) if failures else []
    if board.metrics:
        lines = [board_text(session, experiment.id, board, wide=wide)]
        calibrated = calibrated_text(session, experiment.name, board)
        if calibrated:
            lines.append("\n" + calibrated)
        if failed:
            lines.append("\n" + fitted("\n".join(failed)))
        if status not in ("completed", "running"):  # stopped while it scored, say
            resume = (
                f"The run stopped before it ended (status {status}); resume with: "
                f"{resume_command(experiment, run)} (it generates only what is "
                "missing, then scores and writes the report)"
            )
            lines.append("\n" + fitted_command(resume, resume_command(experiment, run)))
        return "\n".join(lines)
    said = fitted_command(
        no_results_line(session, experiment, state), resume_command(experiment, run)
    )
    return "\n".join([said, *([fitted("\n".join(failed))] if failed else [])])


def board_text(
    session: Session, experiment_id: int, board: Leaderboard, *, wide: bool = False
) -> str:
    """A leaderboard as a terminal table, as wide as the terminal, and, where the
    experiment raced, the race's standing under it (what `show`, `run` and `rescore`
    print)."""
    from evaluation.compare._leaderboard import label_names, render_text
    from evaluation.storage.race import raced

    shown = render_text(board, wide=wide, columns=terminal_columns())
    if not board.metrics:
        return shown
    race, estimated = None, ""
    if raced(session, experiment_id):  # the race's standing and the item banks: numpy
        from evaluation.adaptive import stopped_line, stored_standing

        race = stored_standing(session, experiment_id, board.labels)
        above = stopped_line(session, experiment_id, board)
        shown += f"\n{fitted(above)}" if above else ""
    if board.coverage and board.coverage.short_configs():
        estimated = _estimates_text(session, experiment_id, label_names(board, wide=wide))
    return (
        shown + (f"\n\n{race.text()}" if race else "") + (f"\n\n{estimated}" if estimated else "")
    )


def leaderboard_text(args: argparse.Namespace, experiment: str) -> str:
    """The stored leaderboard of ``experiment``, as a terminal table (a race's standing
    under it)."""
    return stored_leaderboard(args, experiment)[1]


def stored_leaderboard(args: argparse.Namespace, experiment: str) -> tuple[Leaderboard, str]:
    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment

    with session_scope(open_engine(args, reads_only=True)) as session:
        board = load_leaderboard(session, experiment)
        return board, board_text(session, get_experiment(session, experiment).id, board)


def _estimates_text(session: Session, experiment_id: int, names: dict[str, str]) -> str:
    """The full-suite estimates under the leaderboard: as the view's page stored them
    where they still hold (without numpy), else computed; rows named and ordered as
    ``names`` says (``label_names``)."""
    from evaluation.itembank import estimates_text, shown_estimates_text
    from evaluation.storage.models import Experiment
    from evaluation.view.stored import stored_estimates

    page = stored_estimates(session, session.get(Experiment, experiment_id).name)
    width = terminal_columns()
    if page is not None:
        return shown_estimates_text(page.metric, page.rows, page.notes, width, names)
    from evaluation.itembank import experiment_estimates

    return estimates_text(*experiment_estimates(session, experiment_id), width, names)


def calibrated_text(session: Session, experiment: str, board: Leaderboard) -> str:
    """The judge's numbers calibrated to people's ratings, when people rated some of
    what a judge scored: each config judge only, people only and combined
    (docs/calibrated-judges.md). The leaderboard has no judge column: its metrics are
    the experiment's own (a note about "judge_* columns above" waited for one)."""
    from evaluation.calibration._render import calibration_text

    return calibration_text(session, experiment, labels=board.labels)


def cmd_experiments(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from evaluation.series.schema import CalibratedNight
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import list_experiments
    from evaluation.storage.runs import (
        ExperimentStatus,
        experiment_status,
        starting_runs,
        starting_words,
    )

    with session_scope(open_reader(args)) as session:
        starting = {
            run.experiment: ExperimentStatus("starting", starting_words(run), run)
            for run in starting_runs(session)
        }
        rows = [
            (e, starting.pop(e.name, None) or experiment_status(session, e))
            for e in list_experiments(session)
        ]
        calibrated = {  # the calibrated level's share: stored, no generation read
            name: f"calibrated {len(ids)}/{total}"
            for name, ids, total in session.exec(
                select(
                    CalibratedNight.experiment,
                    CalibratedNight.case_ids,
                    CalibratedNight.suite_cases,
                )
            ).all()
        }
    if not rows and not starting:
        fresh = missing_default_database(args)
        where = f" (no results database at {fresh} yet)" if fresh else ""
        from flows.cli._demo import demo_command

        print(f"No experiments yet{where}. Try: {demo_command()}")
        return 0
    listed = [
        (
            e.name,
            e.suite,
            state.status,
            _level(state.run.level if state.run else None, calibrated.get(e.name, "")),
            _created(e.created_at),
            "SIMULATED" if e.simulated else "real",
            state.reason or "",
        )
        for e, state in rows
    ]
    listed += [  # claimed, not stored yet: its flow has not begun (Prefect starting)
        (name, "", state.status, "", _created(state.run.started_at), "", state.reason or "")
        for name, state in starting.items()
        if state.run is not None
    ]
    print("\n".join(_listing(listed, known_columns())))
    return 0


def _created(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _listing(rows: list[tuple[str, ...]], width: int | None) -> list[str]:
    """`experiments`' lines: one a row where its columns fit ``width`` or none is known
    (a file, a pipe: whole lines for grep; a long reason wrapped under it only where
    known); else (121 wide at 80 columns) name, status, level and backend on a row's
    first line, its suite, creation and reason on the next, indented."""
    lines = [
        f"{'name':<32} {'suite':<20} {'status':<11} {'level':<17} {'created (UTC)':<20} "
        f"{'backend':<9} reason"
    ]
    if width is None or (
        len(lines[0]) <= width and all(len(row[0]) <= 32 and len(row[1]) <= 20 for row in rows)
    ):
        for name, suite, status, level, created, backend, reason in rows:
            line = f"{name:<32} {suite:<20} {status:<11} {level:<17} {created:<20} {backend:<9} "
            lines.append(fitted((line + reason).rstrip(), width))
        return lines
    room = max(len("name"), *(len(row[0]) for row in rows))
    lines = [f"{'name':<{room}} {'status':<11} {'level':<17} backend", "  suite, created (UTC)"]
    for name, suite, status, level, created, backend, reason in rows:
        lines.append(f"{name:<{room}} {status:<11} {level:<17} {backend}")
        lines.append(fitted(f"  {suite}, {created}" + (f": {reason}" if reason else ""), width))
    return lines


def _level(recorded: str | None, calibrated: str) -> str:
    """The level column: what the last run recorded, the calibrated level with its share
    ("calibrated 8/36"); a database from before levels were recorded: the calibrated
    share where there is one, else blank."""
    if recorded is None or recorded.startswith("calibrated"):
        return calibrated
    return recorded


def cmd_export(args: argparse.Namespace) -> int:
    """Each file written on a line; an empty level's (written with its columns) says "0
    rows" and why (a header-only file beside its path alone read as a failed export)."""
    from evaluation.export import EMPTY_BECAUSE, export_frames, write_levels
    from evaluation.storage.db import session_scope

    with session_scope(open_reader(args)) as session:
        exported = export_frames(session, args.experiment, fmt=args.format, levels=args.level)
        try:
            paths = write_levels(exported, args.out, args.format)
        except OSError as exc:  # a place the parser could not tell is unwritable
            raise options.cannot_write(exc, "export", "--out", args.out) from exc
    frames = exported[1]
    if args.format == "excel":  # one workbook, a sheet per level
        print(paths[0])
        for level in (level for level, frame in frames.items() if frame.empty):
            print(f"  sheet {level}: 0 rows ({EMPTY_BECAUSE[level]})")
        return 0
    for (level, frame), path in zip(frames.items(), paths, strict=True):
        print(f"{path}: 0 rows ({EMPTY_BECAUSE[level]})" if frame.empty else path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser("experiments", help="list experiments")
    p.set_defaults(func=cmd_experiments)

    p = sub.add_parser("show", help="print an experiment's leaderboard")
    p.add_argument("experiment")
    p.add_argument(
        "--wide",
        action="store_true",
        help="every column, full labels and config hashes (default: as wide as the "
        "terminal or $COLUMNS, long labels wrapped; 100 columns in a file)",
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write results to files")
    p.add_argument("experiment")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help="file format",
    )
    p.add_argument(
        "--level",
        action="append",
        choices=LEVELS,
        metavar="LEVEL",
        help=f"what to export: {', '.join(LEVELS)} (repeatable; default: all, stages where "
        "a case ran a pipeline)",
    )
    p.add_argument(
        "--out",
        type=options.output_folder,
        default=".",
        help="output folder, created if missing (a new one named as a file, e.g. r6.json, is "
        "refused); its EXPERIMENT-LEVEL files are replaced",
    )
    p.set_defaults(func=cmd_export)
