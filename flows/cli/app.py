"""The `evalflow` command line: the edge where settings are read and flows are started.
Each verb group is a module with a ``register(sub)``; add a new group to ``VERB_GROUPS``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from evaluation.errors import EvalError
from flows.cli import ops, results, review, runs, selection, stats, view

VERB_GROUPS = (runs, results, stats, ops, review, selection, view)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``, exit 2) like every other."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evalflow", description=__doc__.split("\n")[0])
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
    for group in VERB_GROUPS:
        group.register(sub)
    return parser


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
