"""Judges calibrated to people: import-ratings (ratings made elsewhere), judge-card."""

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


def cmd_judge_card(args: argparse.Namespace) -> int:
    from evaluation.calibration._card import card_text, judge_card
    from evaluation.errors import EvalError
    from evaluation.review.frames import judgements_frame
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment

    with session_scope(open_engine(args, reads_only=True)) as session:
        row = get_experiment(session, args.experiment)
        judges = sorted(set(judgements_frame(session, row.id)["judge"]))
        if not judges:
            raise EvalError(
                f"no judge has scored {row.name}: run `evalflow judge {row.name} --model M` first"
            )
        if args.judge and args.judge not in judges:
            raise EvalError(
                f"judge {args.judge!r} has not scored {row.name}; its judges: {', '.join(judges)}"
            )
        cards = [
            judge_card(session, int(row.id), j, min_ratings=args.min_ratings)
            for j in ([args.judge] if args.judge else judges)
        ]
    print("\n\n".join(card_text(c) for c in cards))
    return 0


def cmd_rate_next(args: argparse.Namespace) -> int:
    from evaluation.calibration._combined import load_calibration
    from evaluation.calibration._plan import plan_lines
    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment

    with session_scope(open_engine(args, reads_only=True)) as session:
        row = get_experiment(session, args.experiment)
        metrics = load_calibration(session, int(row.id), adjust=args.adjust)
        labels = load_leaderboard(session, row.name).labels
    print("\n".join(plan_lines(metrics, labels, row.name)))
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

    p = sub.add_parser(
        "judge-card",
        help="how far a judge can be trusted: agreement with people, position, length and "
        "self-preference bias, drift across runs",
    )
    p.add_argument("experiment")
    p.add_argument("--judge", type=options.text, help="kind:model as stored (default: each)")
    p.add_argument(
        "--min-ratings",
        type=options.count,
        default=30,
        help="rated outputs a criterion needs to be called calibrated (default 30)",
    )
    p.set_defaults(func=cmd_judge_card)

    p = sub.add_parser(
        "rate-next",
        help="which outputs people should rate next: the open comparisons of a judge "
        "calibrated to people, and how many ratings would settle them",
    )
    p.add_argument("experiment")
    p.add_argument(
        "--adjust",
        choices=["holm", "fdr_bh"],
        default="holm",
        help="multiplicity adjustment over the pairs, as compare's (default: holm)",
    )
    p.set_defaults(func=cmd_rate_next)
