"""Selection commands: recommend, retrain."""

from __future__ import annotations

import argparse
import sys

from evaluation.errors import EvalError
from evaluation.suites import TASK_TYPES
from flows.cli import options


def cmd_recommend(args: argparse.Namespace) -> int:
    from selection import recommend

    try:
        answer = recommend(
            args.task_type,
            max_latency_s=args.max_latency,
            max_energy_j=args.max_energy,
            min_quality=args.min_quality,
            prefer=args.prefer,
            version=args.version,
            database_url=args.database,
        )
    except ValueError as exc:  # recommend() refuses bad arguments this way
        raise EvalError(str(exc)) from exc
    if answer.status == "unavailable":  # no usable database or selector: an error, exit 2
        message = " ".join(answer.message.split())
        if args.version is not None and answer.version_id is None:
            message += _versions_there(args.version)
        raise EvalError(message)
    print(answer.explain())
    return 0 if answer.choice is not None else 1


def _versions_there(version: int) -> str:
    """What a refusal of ``--version`` adds: the selector versions there are (a newcomer
    was told only that the one asked for does not exist); "" where it exists or the
    database cannot be read (the refusal says so itself)."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from selection._db import engine_for
    from selection.versions import current_version, list_versions

    try:
        with engine_for(None, None) as engine, Session(engine) as session:
            ids = [v.id for v in list_versions(session) if v.id is not None]
            promoted = current_version(session)
    except (SQLAlchemyError, EvalError):
        return ""
    if version in ids:
        return ""
    if not ids:
        return "; no version has been trained yet (`evalflow retrain` trains one)"
    default = f"default: {promoted.id}, the promoted one" if promoted else "none promoted"
    return f"; the versions there are: {_spans(ids)} ({default})"


def _spans(ids: list[int]) -> str:
    """Whole numbers as runs: [1, 2, 3, 5, 7, 8] as "1-3, 5, 7, 8"."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(
        f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs
    )


def cmd_retrain(args: argparse.Namespace) -> int:
    from flows.cli.logs import console_for
    from flows.retrain_selector import retrain_selector
    from flows.run_control import prefect_api
    from selection.frame import NotEnoughTrainingData

    console_for(args)
    try:
        with prefect_api():
            summary = retrain_selector(
                database=args.database, include_simulated=args.include_simulated
            )
    except NotEnoughTrainingData as exc:  # not bad input: exit 1 (README), with what to run
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "promoted" if summary["promoted"] else "kept, not promoted"
    print(
        f"selector v{summary['version_id']} trained on {summary['generations']} generations: "
        f"{state}. {summary['reason']}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser("recommend", help="recommend a config for a task type under limits")
    p.add_argument("task_type", choices=TASK_TYPES, help="the kind of task")
    p.add_argument("--max-latency", type=options.seconds, help="seconds per answer (p95)")
    p.add_argument("--max-energy", type=options.positive, help="joules per generation")
    p.add_argument(
        "--min-quality",
        type=options.share,
        help="0-1 on the task type's quality metric (0.7, not 70)",
    )
    p.add_argument(
        "--prefer",
        choices=["quality", "speed"],
        default="quality",
        help="rank the feasible configs by quality, or by speed (lowest estimated median latency)",
    )
    p.add_argument(
        "--version", type=options.count, help="selector version (default: the promoted one)"
    )
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("retrain", help="train a new selector version; promote it if not worse")
    p.add_argument(
        "--include-simulated", action="store_true", help="also learn from SIMULATED results"
    )
    p.set_defaults(func=cmd_retrain)
