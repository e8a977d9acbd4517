"""`evalflow rescore`: an experiment's scores computed again, nothing regenerated."""

from __future__ import annotations

import argparse

from flows.cli import options
from flows.cli._run_words import unscored_metrics
from flows.cli._width import fitted
from flows.cli.logs import console_for
from flows.cli.results import stored_leaderboard


def cmd_rescore(args: argparse.Namespace) -> int:
    from flows.cli._signals import stop_signals_as_interrupt

    with stop_signals_as_interrupt():  # SIGTERM, SIGHUP stop it as Ctrl-C does: exit 143, 129
        return _rescore(args)


def _rescore(args: argparse.Namespace) -> int:
    from flows.rescore import rescore
    from flows.run_control import prefect_api, sigterm_kept_from_prefect

    metrics = args.metrics
    _check_rescore(args, [*([args.first] if args.first else []), *(metrics or [])])
    # first: importing Prefect's flow engine sets up its logging again
    with sigterm_kept_from_prefect():
        console_for(args, result_says_it=True)
        with prefect_api():
            done = rescore(
                experiment=args.experiment,
                metrics=metrics,
                database=args.database,
                first=args.first,
            )
    board, text = stored_leaderboard(args, args.experiment)
    print(text)
    if unscored := unscored_metrics(board):
        print(fitted(f"warning: {unscored}"))
    if done["report"]:
        print(f"\nThe report, written again: {done['report']}")
    return 0


def _check_rescore(args: argparse.Namespace, metrics: list[str] | None) -> None:
    """Refuse an unknown experiment or metric before Prefect starts (seconds), a scorer
    of the experiment's own whose code does not import here (every metric's aggregates
    are computed again), and a ``--first`` metric with no better direction: the
    leaderboard ranks by the first metric, the selector reads quality from it and a race
    is judged on it (``output_length`` first ranked the shortest outputs best)."""
    from evaluation.errors import EvalError
    from evaluation.metrics import get_metric
    from evaluation.storage.db import open_database, session_scope
    from evaluation.storage.repository import get_experiment

    with session_scope(open_database(args.database, create=False)) as session:
        own = get_experiment(session, args.experiment).metrics
    for name in (*(metrics or ()), *own):
        get_metric(name)
    if args.first and get_metric(args.first).descriptive:
        raise EvalError(
            f"--first {args.first}: {args.first} has no better direction (it is descriptive), "
            "and the first metric ranks the leaderboard, gives the selector its quality and "
            "judges a race: put a quality metric first (--metrics scores it without ranking by it)"
        )


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser("rescore", help="recompute scores without regenerating")
    p.add_argument("experiment")
    p.add_argument(
        "--metrics",
        type=options.name_list,
        help="comma-separated metric names to score, added to the experiment's own "
        "(default: score the experiment's own again)",
    )
    p.add_argument(
        "--first",
        type=options.text,
        metavar="METRIC",
        help="also score METRIC and put it first among the experiment's metrics: the "
        "leaderboard ranks by it and the selector reads quality from it (`recommend`'s note "
        "on mixed metrics names it)",
    )
    p.set_defaults(func=cmd_rescore)
