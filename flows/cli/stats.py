"""Statistics commands: compare, power."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from flows.cli import options

ESTIMATES_NOTE = (
    "The configs ran part of the suite: the means and differences above are of the cases "
    "they ran; their full-suite scores with 95% intervals, from the suite's item bank "
    "where it serves, else the plain mean of the cases run (docs/calibrated-subsets.md)."
)


def cmd_compare(args: argparse.Namespace) -> int:
    args.baseline = _one_baseline(args)
    summary = _compare_and_publish(args) if args.publish else _current_comparison(args)
    if args.markdown:
        print(summary["markdown"])
        for note in _dropped(args) + _stopped(args):
            print(f"**{note}**\n")
        calibrated = _calibrated(args, markdown=True)
        if calibrated:
            print(f"## Judges calibrated to people\n\n{calibrated}\n")
        estimated = "\n\n".join(f"```\n{section}\n```" for section in _estimates(args))
        if estimated:
            print(f"## Full-suite estimates\n\n{ESTIMATES_NOTE}\n\n{estimated}\n")
        return 0
    from evaluation.compare import render_comparison_text
    from flows.cli._width import known_columns, terminal_columns

    text = render_comparison_text(
        summary["run_label"],
        summary["comparisons"],
        summary["verdicts"],
        simulated=summary["simulated"],
        partly_simulated=_partly_simulated(args) if summary["simulated"] else (),
        all_pairs=args.all,
        adjustment=args.adjust,
        columns=terminal_columns(),
        table_columns=known_columns(),
    )
    print(text)
    for note in _dropped(args) + _stopped(args):  # an experiment's name kept whole
        print(f"\n{textwrap.fill(note, terminal_columns(), break_on_hyphens=False)}")
    calibrated = _calibrated(args)
    if calibrated:
        print("\n" + calibrated)
    for section in _estimates(args):
        print(f"\n{section}")
    return 0


def _partly_simulated(args: argparse.Namespace) -> list[str]:
    """The experiments compared that ran on the simulated backend, where others ran on
    real models; else none."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from flows.cli._database import open_reader

    with session_scope(open_reader(args)) as session:
        ran = {name: get_experiment(session, name).simulated for name in args.experiments}
    simulated = [name for name, flag in ran.items() if flag]
    return simulated if len(simulated) < len(ran) else []


def _calibrated(args: argparse.Namespace, *, markdown: bool = False) -> str:
    """The comparisons above are of stored scores (a judge's alone, for judge_*); where
    people rated some of a judge's outputs, each experiment's differences combined with
    them (docs/calibrated-judges.md), adjusted as --adjust says; text or markdown."""
    from evaluation.calibration._render import calibration_text
    from evaluation.storage.db import session_scope
    from flows.cli._database import open_reader

    with session_scope(open_reader(args)) as session:
        texts = [
            calibration_text(session, name, adjust=args.adjust, markdown=markdown)
            for name in dict.fromkeys(args.experiments)
        ]
    return "\n\n".join(t for t in texts if t)


def _estimates(args: argparse.Namespace) -> list[str]:
    """Per experiment whose configs ran part of the suite: the full-suite estimates (the
    item bank's, or the subset's plain mean, said so), as `show` prints them; the
    differences above are between the cases the configs ran, not the full suite."""
    from evaluation.itembank import estimates_text, experiment_estimates
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from flows.cli._database import open_reader
    from flows.cli._width import terminal_columns

    sections = []
    with session_scope(open_reader(args)) as session:
        for name in dict.fromkeys(args.experiments):
            experiment = get_experiment(session, name)
            text = estimates_text(*experiment_estimates(session, experiment.id), terminal_columns())
            if text:
                sections.append(f"{name}: {text}")
    return sections


def _dropped(args: argparse.Namespace) -> list[str]:
    """Per experiment compared whose spec dropped configs it ran (an edited spec): the
    leaderboard's "Not above: ..." line, naming the experiment; they are not compared."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.dropped import dropped_configs
    from evaluation.storage.repository import get_experiment
    from flows.cli._database import open_reader

    notes = []
    with session_scope(open_reader(args)) as session:
        for name in dict.fromkeys(args.experiments):
            dropped = dropped_configs(session, get_experiment(session, name).id)
            if dropped:
                notes.append(dropped.note(name))
    return notes


def _stopped(args: argparse.Namespace) -> list[str]:
    """Per experiment compared whose race stopped configs that rank above every config it
    kept: the line under `show`'s leaderboard, naming the experiment (their means, and so
    their pairs here, are over the cases they ran only)."""
    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.storage.db import session_scope
    from evaluation.storage.race import raced
    from evaluation.storage.repository import get_experiment
    from flows.cli._database import open_reader

    notes = []
    with session_scope(open_reader(args)) as session:
        for name in dict.fromkeys(args.experiments):
            experiment_id = int(get_experiment(session, name).id)
            if not raced(session, experiment_id):  # the race's module: numpy, only then
                continue
            from evaluation.adaptive import stopped_line

            board = load_leaderboard(session, name)
            race = f"the race: evalflow show {name}"
            line = stopped_line(session, experiment_id, board, where=race)
            notes += [f"{name}: {line}"] if line else []
    return notes


def _one_baseline(args: argparse.Namespace) -> str | None:
    """The baseline of the (repeatable) ``--baseline``: given twice with different names,
    both must name one config (the database is read only then)."""
    refs = args.baseline or []
    if len(set(refs)) < 2:
        return refs[0] if refs else None
    from evaluation.compare import one_baseline, parse_selections
    from evaluation.storage.db import session_scope
    from flows.cli._database import open_reader

    selections = parse_selections(args.experiments, args.config)
    with session_scope(open_reader(args)) as session:
        return one_baseline(session, selections, refs)


def _current_comparison(args: argparse.Namespace) -> dict[str, Any]:
    """In this process, without Prefect: the stored comparison while its inputs are
    unchanged, else computed and stored (no artifacts)."""
    from evaluation.compare import current_comparison, parse_selections
    from evaluation.storage.db import session_scope
    from flows.cli._database import open_reader

    selections = parse_selections(args.experiments, args.config)
    with session_scope(open_reader(args)) as session:
        found = current_comparison(session, selections, baseline=args.baseline, adjust=args.adjust)
    return {
        "run_label": found.run_label,
        "simulated": found.simulated,
        "comparisons": found.rows,
        "verdicts": found.verdicts,
        "markdown": found.markdown,
    }


def _compare_and_publish(args: argparse.Namespace) -> dict[str, Any]:
    """The `compare` flow: computed, stored and published as Prefect artifacts."""
    from flows.cli.logs import console_for
    from flows.compare import compare
    from flows.run_control import prefect_api

    console_for(args, result_says_it=True)  # its verdicts: the table below says them
    with prefect_api() as server:
        summary = compare(
            experiments=args.experiments,
            configs=args.config,
            baseline=args.baseline,
            adjust=args.adjust,
            database=args.database,
        )
        # stderr: the table (or --markdown) on stdout reads as without --publish
        keys = list(summary["artifacts"].values())
        print(published_words(keys, temporary=server is not None), file=sys.stderr)
    return summary


def published_words(keys: list[str], *, temporary: bool) -> str:
    """Where ``keys`` went: the configured API's URL, or the temporary server's database
    and how to see them (a newcomer found no word of either, and took them for lost)."""
    from prefect.settings import get_current_settings

    from evaluation.redact import redact_url

    settings = get_current_settings()
    published = f"published Prefect artifacts {', '.join(keys)}"
    if not temporary:
        return f"{published} to the Prefect API at {redact_url(settings.api.url or '')}"
    url = settings.server.database.connection_url.get_secret_value()
    where = url.split(":///", 1)[-1] if url.startswith("sqlite") else redact_url(url)
    return (
        f"{published} through this command's temporary Prefect API (PREFECT_API_URL not "
        f"set), which stops with it: they are kept in {where}, where `prefect server "
        "start` shows them; with PREFECT_API_URL set they go to that server instead "
        "(docs/running-for-real.md)"
    )


def cmd_power(args: argparse.Namespace) -> int:
    from evaluation.compare._power_plan import plan_for_spec, render_power
    from evaluation.settings import database_url, no_database_yet
    from flows.cli._width import terminal_columns

    url = database_url(args.database)
    plan = plan_for_spec(
        args.spec,
        # no database yet: no pilot stored, and none is made to find that out
        database_url="sqlite://" if no_database_yet(url) else url,
        delta=args.delta,
        pilot_name=args.pilot or "",
        alpha=args.alpha,
        power=args.power,
    )
    print(render_power(plan, terminal_columns()), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "compare",
        help="paired comparisons of stored configs (one experiment, or across experiments)",
        description="Paired comparisons of stored configs, printed as a table.\n\n"
        "Runs in this process, without Prefect: a comparison whose inputs (scores,\n"
        "configs, baseline, adjustment) are unchanged since it was stored, by the\n"
        "sweep's own compare stage or an earlier `compare`, is read back; otherwise it\n"
        "is computed and stored. --publish runs the `compare` flow instead: it computes\n"
        "again and also publishes the comparison as Prefect artifacts.",
    )
    p.add_argument("experiments", nargs="+", metavar="EXPERIMENT")
    p.add_argument(
        "--config",
        action="append",
        help="a config as show/compare name it (label, full label, hash or its prefix), in "
        "every experiment, or EXPERIMENT:CONFIG for one "
        "(repeatable; default: all configs)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        help="compare each config with this one instead of all pairs: any config of the "
        "experiments, named as --config names it (compared too where --config left it out)",
    )
    p.add_argument(
        "--adjust",
        choices=["holm", "fdr_bh"],
        default="holm",
        help="multiple-comparison correction",
    )
    p.add_argument(
        "--all", action="store_true", help="list every pair (default: the 8 most significant)"
    )
    p.add_argument(
        "--markdown", action="store_true", help="print the full report, as the artifact shows it"
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="run the `compare` flow: compute again and publish Prefect artifacts (slower)",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "power",
        help="before a sweep: cases needed to detect a difference, or the difference "
        "a suite can detect",
    )
    p.add_argument("spec", help="the sweep spec (YAML)")
    p.add_argument(
        "--delta",
        type=options.positive,
        required=True,
        help="difference to detect, on the metric's scale (0-1 for a 0/1 metric)",
    )
    p.add_argument(
        "--pilot",
        help="experiment whose scores give the variances (default: the experiment named "
        "like the spec, if stored; else a stated assumption)",
    )
    p.add_argument("--alpha", type=options.probability, default=0.05, help="significance level")
    p.add_argument("--power", type=options.probability, default=0.80, help="power to plan for")
    p.set_defaults(func=cmd_power)
