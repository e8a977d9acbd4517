"""The `evalflow` command line: the edge where settings are read and flows are started."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from evaluation.errors import EvalError
from flows import cli_ops, cli_review, cli_selection, cli_stats

Command = Callable[[argparse.Namespace], int]


def _engine(args: argparse.Namespace):
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine

    return make_engine(database_url(args.database))


def cmd_plan(args: argparse.Namespace) -> int:
    from evaluation.preflight import check_before_run
    from evaluation.spec import format_plan, make_plan
    from evaluation.sweep import prepare_sweep

    sweep = prepare_sweep(args.spec)
    check_before_run(sweep, simulated_only=True)  # simulated hosts need no server
    print(format_plan(make_plan(sweep.spec, len(sweep.suite.cases))))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from evaluation.preflight import check_before_run
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine
    from evaluation.sweep import prepare_sweep
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

        quiet_expected_errors(args.verbose)

        try:
            if server is not None:
                server.wait_ready()
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
            print(f"error: the run failed: {reason}; resume with: {resume}", file=sys.stderr)
            return 1
    print(_leaderboard_text(args, summary["experiment"]))
    print(
        f"\n{summary['generated']} generated, {summary['failed']} failed, "
        f"{summary['skipped_already_done']} already done (resumed)."
    )
    return 0 if summary["failed"] == 0 else 1


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1 (a bad value is a one-line usage error)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


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

    quiet_expected_errors(args.verbose)
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    rescore(experiment=args.experiment, metrics=metrics, database=args.database)
    print(_leaderboard_text(args, args.experiment))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``, exit 2) like every other."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evalflow", description=__doc__)
    parser.add_argument(
        "--database", help="SQLAlchemy URL (default: $EVALFLOW_DATABASE_URL or ~/.evalflow)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the traceback of an error, and Prefect's own for a failed flow",
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
    p.add_argument(
        "--level",
        choices=["smoke", "subset", "full"],
        default="full",
        help="smoke: 3 cases per config, fails on any error; subset: a stratified 20%%; "
        "full (default). Each reuses what earlier levels generated",
    )
    p.add_argument("--limit", type=_positive, help="only the first N cases (of the level)")
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


class _ExpectedErrors(logging.Filter):
    """For Prefect's console handler: drops a flow's or task's ERROR record about an
    EvalError (and the "Finished in state Failed" that follows), which the CLI states
    once, in one line. The Prefect API's log handler still gets them, traceback and all."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_RUN_LOGGERS):
            return True
        if self.seen and str(record.msg).startswith("Finished in state Failed"):
            return False  # logged at INFO or ERROR
        if record.levelno >= logging.ERROR and record.exc_info:
            self.seen = self.seen or isinstance(record.exc_info[1], EvalError)
            return not isinstance(record.exc_info[1], EvalError)
        return True


_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def quiet_expected_errors(verbose: bool = False) -> None:
    """Keep Prefect's tracebacks of expected errors off the console (not with -v).
    Call after Prefect is imported: it configures its console handler on import."""
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler" and not any(
            isinstance(f, _ExpectedErrors) for f in handler.filters
        ):
            handler.addFilter(_ExpectedErrors())


@contextmanager
def _database_in_environment(args: argparse.Namespace) -> Iterator[None]:
    """``--database`` reaches flows through the environment, never as a parameter: flow
    parameters are stored in Prefect's database and shown in its UI, passwords and all.
    The variable is restored afterwards (main() may run in-process, e.g. in tests)."""
    from evaluation.settings import DATABASE_URL_ENV, check_database_url

    if not args.database:
        yield
        return
    check_database_url(args.database, "--database")
    before = os.environ.get(DATABASE_URL_ENV)
    os.environ[DATABASE_URL_ENV], args.database = args.database, None
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATABASE_URL_ENV, None)
        else:
            os.environ[DATABASE_URL_ENV] = before


def main(argv: Sequence[str] | None = None) -> int:
    # The embedded Prefect server otherwise logs an ERROR when it cannot reach Prefect's
    # telemetry endpoint (machines without internet); a user's own setting wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        with _database_in_environment(args):
            return args.func(args)
    except EvalError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
