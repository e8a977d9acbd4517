"""`evalflow bank SUITE`: calibrate a suite's item bank from the stored results (a new
version when results arrived since the last), or show the newest (docs/calibrated-subsets.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli import options
from flows.cli._database import open_engine


def cmd_bank(args: argparse.Namespace) -> int:
    from evaluation.itembank import BankRefused, calibrate_bank, current_bank, stored_scores
    from evaluation.settings import database_url
    from evaluation.storage.db import session_scope

    url = database_url(args.database)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise BankRefused(  # before an engine: it would leave an empty file behind
            f"no suite named {args.suite!r} has been run: an item bank is calibrated from "
            f"stored results and there is no results database at "
            f"{url.removeprefix('sqlite:///')} yet"
        )
    with session_scope(open_engine(args)) as session:
        # refuses a suite never run
        scores = stored_scores(session, args.suite, args.metric, all_runs=args.all_runs)
        bank = current_bank(session, args.suite, scores.metric)
        fresh = (
            bank is not None
            and bank.row.scores == int((scores.w > 0).sum())
            and bank.row.configs == scores.configs
            and bank.row.suite_digest == scores.digest
        )
        if args.show or (fresh and not args.force):
            if bank is None:
                print(_no_bank(session, args.suite, scores.metric))
                return 0
            _notes(scores)
            print(bank.summary())
            print(f"  {'up to date' if fresh else _stale(bank, scores)}")
            return 0
        # refusals print nothing
        bank = calibrate_bank(session, args.suite, scores.metric, all_runs=args.all_runs)
    _notes(scores)
    print(bank.summary())
    return 0


def _stale(bank, scores) -> str:
    """What `bank --show` says of a bank the stored results moved past, and what a new
    version needs: the suite's content as last run may not be the bank's."""
    from evaluation.itembank import MIN_CONFIGS

    enough = int(((scores.w > 0).mean(1) >= 0.5).sum())
    content = (
        ""
        if bank.row.suite_digest == scores.digest
        else f"the suite was last run with other content ({scores.content()}) than this "
        f"bank's ({bank.row.suite_digest[:8]}); "
    )
    if enough >= MIN_CONFIGS:
        return f"new results since: {content}`evalflow bank {scores.suite}` makes a new version"
    return (
        f"new results since: {content}a new version needs {MIN_CONFIGS} configs that ran "
        f"that content in full ({enough} so far), then `evalflow bank {scores.suite}`"
    )


def _no_bank(session, suite: str, metric: str) -> str:
    """What `bank --show` says without a bank on ``metric``: the metrics that have one,
    and what would make this one."""
    from sqlalchemy import select

    from evaluation.itembank import how_to_bank
    from evaluation.itembank.schema import ItemBank

    banked = sorted(
        set(session.exec(select(ItemBank.metric).where(ItemBank.suite == suite)).scalars())
    )
    if not banked:
        return f"no item bank for suite {suite!r} yet: {how_to_bank(session, suite, metric)}"
    return (
        f"no item bank for suite {suite!r} on {metric!r} (banks on: {', '.join(banked)}; "
        f"`evalflow bank {suite} --show --metric {banked[0]}` shows one): "
        f"{how_to_bank(session, suite, metric)}"
    )


def _notes(scores) -> None:
    """What the stored scores left out, printed once the bank is shown or made."""
    for note in scores.notes():
        print(f"note: {note}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "bank",
        help="calibrate a suite's item bank from its stored results",
        description="Fit a 2PL item model (difficulty and discrimination per case, ability "
        "per config) to every stored score of SUITE and store it as a new version, when "
        "results arrived since the last; `run --level calibrated` then runs 10% of the "
        "cases in the seeded stratified order and every score shown is a full-suite "
        "estimate. Pipeline configs, cases no config scored, runs that did not complete "
        "and runs the series watch raised an ALARM on are left out.",
    )
    p.add_argument("suite")
    p.add_argument(
        "--metric",
        type=options.text,
        help="the metric to calibrate on (default: the suite's first)",
    )
    p.add_argument("--show", action="store_true", help="show the newest bank, change nothing")
    p.add_argument("--force", action="store_true", help="recalibrate even when up to date")
    p.add_argument(
        "--all-runs",
        action="store_true",
        help="keep the runs left out by default: those the series watch raised an ALARM on "
        "(not accepted as a baseline) and those that did not complete",
    )
    p.set_defaults(func=cmd_bank)
