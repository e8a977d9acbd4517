"""Judges calibrated to people: import-ratings (ratings made elsewhere)."""

from __future__ import annotations

import argparse

from flows.cli import options
from flows.cli._database import open_engine


def cmd_import_ratings(args: argparse.Namespace) -> int:
    from evaluation.calibration._import import import_ratings
    from evaluation.review.store import CRITERIA

    done = import_ratings(
        open_engine(args),
        args.experiment,
        args.file,
        criteria=CRITERIA,
        min_ratings=args.min_ratings,
    )
    print(
        f"{done.ratings} ratings of {args.experiment} by {', '.join(done.raters)} "
        f"({', '.join(done.criteria)}): {done.stored} stored, {done.unchanged} already there"
        + (f", {done.superseded} earlier ones superseded" if done.superseded else "")
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "import-ratings",
        help="import people's ratings made elsewhere (CSV or JSONL by case and config); "
        "checked whole before anything is stored",
    )
    p.add_argument("experiment")
    p.add_argument(
        "file",
        type=options.existing_file,
        help="a .csv (header: case,config,rater,criterion,stars[,sample,notes]) or .jsonl file",
    )
    p.add_argument(
        "--min-ratings",
        type=options.count,
        default=2,
        help="refuse a criterion with fewer rated outputs (default 2)",
    )
    p.set_defaults(func=cmd_import_ratings)
