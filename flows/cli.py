"""The `evalflow` command line: the edge where settings are read and flows are started."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from evaluation.errors import EvalError
from flows import cli_ops, cli_review, cli_selection, cli_stats

Command = Callable[[argparse.Namespace], int]


def _engine(args: argparse.Namespace):
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine

    return make_engine(database_url(args.database))


def cmd_plan(args: argparse.Namespace) -> int:
    from evaluation.spec import format_plan, make_plan
    from evaluation.sweep import prepare_sweep

    sweep = prepare_sweep(args.spec)
    print(format_plan(make_plan(sweep.spec, len(sweep.suite.cases))))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine
    from evaluation.sweep import prepare_sweep
    from flows import run_control

    sweep = prepare_sweep(args.spec)  # refuse bad input before Prefect starts
    name = args.experiment or sweep.spec.name
    database = database_url(args.database)
    process = run_control.claim(make_engine(database), name, wait=args.wait)
    resume = shlex.join(["evalflow", *args.argv])
    with (
        run_control.embedded_prefect() as server,
        run_control.interruptible(database, name, process, resume, server),
    ):
        from flows.evaluate import evaluate

        try:
            if server is not None:
                server.wait_ready()
            summary = asyncio.run(
                evaluate(
                    spec_path=str(args.spec),
                    experiment=args.experiment,
                    database=args.database,
                    simulated_time_scale=args.time_scale,
                )
            )
        except Exception as exc:
            reason = run_control.record_failure(database, name, process, exc)
            if isinstance(exc, EvalError):
                raise
            print(f"error: the run failed: {reason}; resume with: {resume}", file=sys.stderr)
            return 1
    print(_leaderboard_text(args, summary["experiment"]))
    print(
        f"\n{summary['generated']} generated, {summary['failed']} failed, "
        f"{summary['skipped_already_done']} already done (resumed)."
    )
    return 0 if summary["failed"] == 0 else 1


def _leaderboard_text(args: argparse.Namespace, experiment: str) -> str:
    from evaluation.leaderboard import load_leaderboard, render_text
    from evaluation.storage.db import session_scope

    with session_scope(_engine(args)) as session:
        board = load_leaderboard(session, experiment)
    return render_text(board)


def cmd_show(args: argparse.Namespace) -> int:
    from evaluation.leaderboard import load_leaderboard, render_text
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import completed_keys, get_experiment
    from evaluation.storage.runs import experiment_status

    with session_scope(_engine(args)) as session:
        experiment = get_experiment(session, args.experiment)
        state = experiment_status(session, experiment)
        board = load_leaderboard(session, args.experiment)
        stored = len(completed_keys(session, experiment.id))
    reason = f": {state.reason}" if state.reason else ""
    if state.status != "completed":
        print(f"Status: {state.status}{reason}")
    if board.metrics:
        print(render_text(board))
        return 0
    rerun = f"evalflow run {experiment.spec_path}" if experiment.spec_path else "evalflow run SPEC"
    print(
        f"No results for {experiment.name!r}: {stored} generations stored, none scored "
        f"(status {state.status}). Rerun to resume: {rerun}"
    )
    return 1


def cmd_experiments(args: argparse.Namespace) -> int:
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import list_experiments
    from evaluation.storage.runs import experiment_status

    with session_scope(_engine(args)) as session:
        rows = [(e, experiment_status(session, e)) for e in list_experiments(session)]
    if not rows:
        print("No experiments yet. Try: evalflow run benchmarks/sweeps/demo-simulated.yaml")
        return 0
    print(f"{'name':<32} {'suite':<20} {'status':<11} {'created (UTC)':<20} {'backend':<9} reason")
    for e, state in rows:
        backend = "SIMULATED" if e.simulated else "real"
        created = e.created_at.strftime("%Y-%m-%d %H:%M:%S")
        reason = state.reason or ""
        line = f"{e.name:<32} {e.suite:<20} {state.status:<11} {created:<20} {backend:<9} {reason}"
        print(line.rstrip())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from evaluation.export import export_experiment
    from evaluation.storage.db import session_scope

    with session_scope(_engine(args)) as session:
        paths = export_experiment(
            session, args.experiment, out_dir=Path(args.out), fmt=args.format, levels=args.level
        )
    for path in paths:
        print(path)
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from flows.rescore import rescore

    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    rescore(experiment=args.experiment, metrics=metrics, database=args.database)
    print(_leaderboard_text(args, args.experiment))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalflow", description=__doc__)
    parser.add_argument(
        "--database", help="SQLAlchemy URL (default: $EVALFLOW_DATABASE_URL or ~/.evalflow)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("experiments", help="list experiments")
    p.set_defaults(func=cmd_experiments)

    p = sub.add_parser("show", help="print an experiment's leaderboard")
    p.add_argument("experiment")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write results to files")
    p.add_argument("experiment")
    p.add_argument("--format", choices=["csv", "json", "parquet", "excel"], default="csv")
    p.add_argument(
        "--level",
        action="append",
        choices=["generations", "scores", "aggregates", "comparisons", "ratings", "judgements"],
        help="what to export (repeatable; default: all)",
    )
    p.add_argument("--out", default=".", help="output folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("rescore", help="recompute scores without regenerating")
    p.add_argument("experiment")
    p.add_argument("--metrics", help="comma-separated metric names (default: the experiment's)")
    p.set_defaults(func=cmd_rescore)

    for extension in (cli_stats, cli_ops, cli_review, cli_selection):
        extension.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The embedded Prefect server otherwise logs an ERROR when it cannot reach Prefect's
    # telemetry endpoint (machines without internet); a user's own setting wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
