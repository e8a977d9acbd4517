"""Sweep commands: plan, run, rescore."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import traceback
from pathlib import Path

from evaluation.errors import EvalError
from flows.cli._database import open_engine
from flows.cli.logs import console_for


def cmd_plan(args: argparse.Namespace) -> int:
    from evaluation.run._context_check import context_warnings
    from evaluation.run._preflight import check_before_run
    from evaluation.run._sweep import prepare_sweep
    from evaluation.spec import format_plan, make_plan

    sweep = prepare_sweep(args.spec)
    check_before_run(sweep, simulated_only=True)  # simulated hosts need no server
    print(format_plan(make_plan(sweep.spec, len(sweep.suite.cases))))
    for line in context_warnings(sweep.work_items(), sweep.spec.hosts):
        print(f"warning: {line}")
    return 0


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1 (a bad value is a one-line usage error)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def cmd_run(args: argparse.Namespace) -> int:
    from evaluation.run._preflight import check_before_run
    from evaluation.run._sweep import prepare_sweep
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine
    from flows import run_control

    # Refuse bad input, unreachable hosts and missing models before Prefect starts.
    sweep = prepare_sweep(args.spec)
    check_before_run(sweep)
    name = args.experiment or sweep.spec.name
    database = database_url(args.database)
    process = run_control.claim(make_engine(database), name, wait=args.wait)
    resume = shlex.join(["evalflow", *args.argv])
    with (
        run_control.embedded_prefect() as server,
        run_control.interruptible(database, name, process, resume, server),
    ):
        from flows.evaluate import evaluate

        console_for(args)

        try:
            if server is not None:
                server.wait_ready()
            from flows.cli.progress import run_progress  # rich: only `run` draws a bar

            with run_progress(enabled=not args.quiet):
                summary = asyncio.run(
                    evaluate(
                        spec_path=str(args.spec),
                        experiment=args.experiment,
                        database=args.database,
                        simulated_time_scale=args.time_scale,
                        level=args.level,
                        limit=args.limit,
                    )
                )
        except Exception as exc:
            reason = run_control.record_failure(database, name, process, exc)
            if isinstance(exc, EvalError):
                raise
            if args.verbose:
                traceback.print_exc()
            print(f"error: the run failed: {reason}; resume with: {resume}", file=sys.stderr)
            return 1
    print(leaderboard_text(args, summary["experiment"]))
    print(
        f"\n{summary['generated']} generated, {summary['failed']} failed, "
        f"{summary['skipped_already_done']} already done (resumed)."
    )
    return 0 if summary["failed"] == 0 else 1


def leaderboard_text(args: argparse.Namespace, experiment: str) -> str:
    """The stored leaderboard of ``experiment``, as a terminal table."""
    from evaluation.compare._leaderboard import load_leaderboard, render_text
    from evaluation.storage.db import session_scope

    with session_scope(open_engine(args)) as session:
        board = load_leaderboard(session, experiment)
    return render_text(board)


def cmd_rescore(args: argparse.Namespace) -> int:
    from flows.rescore import rescore

    console_for(args)
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    rescore(experiment=args.experiment, metrics=metrics, database=args.database)
    print(leaderboard_text(args, args.experiment))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser("plan", help="print the expanded configs and generation count")
    p.add_argument("spec", type=Path)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run a sweep end to end (resumes if interrupted)")
    p.add_argument("spec", type=Path)
    p.add_argument("--experiment", help="experiment name (default: the spec's name)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=0.0,
        help="simulated backend only: share of simulated latency really slept",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is running this experiment, wait for it instead of refusing",
    )
    p.add_argument(
        "--level",
        choices=["smoke", "subset", "full"],
        default="full",
        help="smoke: 3 cases per config, fails on any error; subset: a stratified 20%%; "
        "full (default). Each reuses what earlier levels generated",
    )
    p.add_argument("--limit", type=_positive, help="only the first N cases (of the level)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("rescore", help="recompute scores without regenerating")
    p.add_argument("experiment")
    p.add_argument("--metrics", help="comma-separated metric names (default: the experiment's)")
    p.set_defaults(func=cmd_rescore)
