"""The watch over time: trends, series, gate."""

from __future__ import annotations

import argparse
import sys

from flows.cli import options
from flows.cli._output_files import write_both
from flows.cli._width import fitted, known_columns


def cmd_trends(args: argparse.Namespace) -> int:
    from evaluation.itembank import BankEstimates
    from evaluation.series._render import trends_text
    from evaluation.series._trends import check_trends_skip
    from evaluation.series._verdict import watch_and_keep
    from evaluation.storage.db import session_scope
    from flows.cli._database import open_engine

    _refuse_missing(args, "nothing to watch: every `evalflow run` starts a series")
    with session_scope(open_engine(args, reads_only=True)) as session:
        check_trends_skip(session, args.series, args.skip)
        watch = watch_and_keep(session, args.series, _settings(args), BankEstimates(session))
    watch = watch.without(args.skip)
    print(fitted(trends_text(watch, known_columns())))
    return 1 if args.fail_on_alarm and watch.alarms else 0


def cmd_series(args: argparse.Namespace) -> int:
    from evaluation.series import baseline_words, list_series, runs_of
    from evaluation.storage.db import session_scope
    from flows.cli._database import missing_default_database, open_engine

    found = []
    if missing_default_database(args) is None:
        with session_scope(open_engine(args, reads_only=True)) as session:
            found = list_series(session)
    if not found:
        print("no series yet: every `evalflow run` starts or extends one (its spec's name)")
        return 0
    width = max(len(s.name) for s in found)
    # left-aligned: "9 runs," and "7 runs (6 completed, 1 interrupted)," start, and
    # "last" follows, in one column each
    counted = {s.name: f"{runs_of(s.statuses)}," for s in found}
    wide = max(len(c) for c in counted.values())
    for s in found:
        baseline = baseline_words(s.baseline)
        simulated = " [SIMULATED]" if s.simulated else ""
        line = (
            f"{s.name:<{width}}  {counted[s.name]:<{wide}} last {s.last_experiment} "
            f"({s.last_status}, started {s.last:%Y-%m-%d %H:%M} UTC){baseline}{simulated}"
        )
        print(fitted(line))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from evaluation.series._gate import GateInputError, gate
    from evaluation.series._render import gate_junit, gate_markdown, gate_text
    from evaluation.storage.db import session_scope
    from flows.cli._database import open_engine

    if args.junit and args.summary and args.junit.resolve() == args.summary.resolve():
        raise GateInputError(
            f"--junit and --summary name the same file ({args.junit}): give each its own"
        )
    _refuse_missing(args, "run the candidate first")
    with session_scope(open_engine(args, reads_only=True)) as session:
        baseline = args.baseline or _accepted(session, args, GateInputError)
        result = gate(
            session,
            args.candidate,
            baseline,
            args.alpha,
            args.skip,
            args.require_power,
            args.max_failures,
        )
    write_both(
        args.junit and (args.junit, gate_junit(result)),
        args.summary and (args.summary, gate_markdown(result)),
        GateInputError,
    )
    print(fitted(gate_text(result)), file=sys.stdout)
    return result.exit_code


def _refuse_missing(args: argparse.Namespace, hint: str) -> None:
    from evaluation.errors import StorageError
    from flows.cli._database import missing_default_database

    if (path := missing_default_database(args)) is not None:
        raise StorageError(f"no results database at {path} yet: {hint}")


def _accepted(session, args: argparse.Namespace, error) -> str:
    """The accepted baseline of ``--series`` (checked to exist), else of the candidate's
    series; an error that names that series, and says so when its accepted baseline is
    the candidate itself."""
    from evaluation.series import series_experiments, series_of_experiment
    from evaluation.storage.baselines import accepted_baseline, accepted_runs
    from evaluation.storage.repository import get_experiment

    if args.series:
        series_experiments(session, args.series)  # SeriesNotFound: one line, exit 2
        series = args.series
    else:
        series = series_of_experiment(session, get_experiment(session, args.candidate))
    found = accepted_baseline(session, series, exclude=args.candidate)
    if found is not None:
        return found
    if accepted_baseline(session, series) == args.candidate:
        # every accept stays: accepting an earlier run leaves the candidate the baseline
        earlier = accepted_runs(session, series)[:-1]
        before = f" ({earlier[-1]}, accepted before it)" if earlier else ""
        raise error(
            f"no baseline for {args.candidate!r}: {args.candidate!r} is itself the accepted "
            f"baseline of series {series!r}; name another with --baseline EXPERIMENT{before}"
        )
    raise error(
        f"no baseline for {args.candidate!r}: series {series!r} has no accepted baseline; "
        "name one with --baseline EXPERIMENT, or accept one with `evalflow baseline accept "
        f"EXPERIMENT`{_where_writable(session)}"
    )


def _where_writable(session) -> str:
    """Where `baseline accept` must run when the database read here takes no write (a
    read-only share: it is refused there, which the advice did not say); "" otherwise."""
    from evaluation.storage.snapshot import where_writable

    where = where_writable(session.get_bind())
    return f" {where}" if where else ""


def _settings(args: argparse.Namespace):
    from evaluation.series._watch import WatchSettings

    return WatchSettings(false_alarms_per_100_nights=args.false_alarms, k=args.k)


def _add_skip(p: argparse.ArgumentParser, name: str, help: str) -> None:
    """``--skip NAME[,NAME]``, parsed alike for `trends` and `gate` (its names are
    checked against what each watches or tests: ``evaluation.series._skip``)."""
    p.add_argument(
        "--skip", type=options.name_list, default=[], metavar=f"{name}[,{name}]", help=help
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "series",
        help="list the series in the database (a spec run again and again)",
        description="Every series: a spec's runs (or those joined with `run --series`).",
    )
    p.set_defaults(func=cmd_series)

    p = sub.add_parser(
        "trends",
        help="a series over time: per config and metric, values, changes and alarms",
        description="Per config and metric of SERIES: a sparkline of its runs, the last "
        "value with its interval, the change against the earlier runs (paired on shared "
        "cases) with its p-value, the CUSUM's accumulated evidence and its alarms, and "
        "the events (a new model digest, server version, suite) it does not compare "
        "across. False alarms are controlled over the whole series: docs/trends.md.",
    )
    p.add_argument("series", help="the series: a spec's name, or a name given to run --series")
    p.add_argument(
        "--false-alarms",
        type=options.number(above=0, below=100),
        default=2.0,
        metavar="PER_100_NIGHTS",
        help="false alarms the whole series may raise per 100 runs, in the long run",
    )
    p.add_argument(
        "--k",
        type=options.number(above=0, at_most=5),
        default=0.75,
        help="CUSUM allowance in z units: drops of about 2k z a run are caught fastest",
    )
    p.add_argument(
        "--fail-on-alarm",
        action="store_true",
        help="exit 1 when the last judged run (completed, not partial) raised an alarm (a "
        "run still going, cut short or at a smoke level after it is not judged and hides none)",
    )
    _add_skip(
        p,
        "METRIC",
        "leave these metrics' streams out of what is shown and of --fail-on-alarm (a "
        "quality metric, failure_rate, tokens_per_s, latency_p95), e.g. --skip "
        "tokens_per_s,latency_p95 where CI's machine load is not the model's doing; they "
        "are still watched, with the verdicts the monitor shows",
    )
    p.set_defaults(func=cmd_trends)

    p = sub.add_parser(
        "gate",
        help="CI gate: exit 1 when a candidate run regressed beyond noise against a baseline",
        description="Compare CANDIDATE with a baseline run, one check per config × metric "
        "(quality metrics by the paired test evalflow uses; failure rate, tokens/s and p95 "
        "latency too), Holm over all of them at --alpha. Exit 0: nothing regressed beyond "
        "noise; 1: something did (or requests failed beyond --max-failures); 2: bad input "
        "(nothing written); 3: nothing did, but with --require-power a quality check cannot "
        "catch that drop. Writes JUnit XML and a "
        "Markdown summary for a CI job when asked (docs/trends.md).",
    )
    p.add_argument("candidate", help="the experiment to judge")
    against = p.add_mutually_exclusive_group()
    against.add_argument(
        "--baseline",
        metavar="EXPERIMENT",
        help="the experiment to compare with (default: the accepted baseline of the "
        "candidate's series, or of --series)",
    )
    against.add_argument(
        "--series", metavar="NAME", help="take the accepted baseline of this series"
    )
    p.add_argument(
        "--alpha",
        type=options.number(above=0, below=1),
        default=0.05,
        help="family-wise error rate over all checks (Holm)",
    )
    _add_skip(
        p,
        "CHECK",
        "leave these checks out (a quality metric, failure_rate, tokens_per_s, "
        "latency_p95), e.g. --skip tokens_per_s,latency_p95 on a shared CI runner whose "
        "load would fail the speed checks; the verdict names what was left out",
    )
    p.add_argument(
        "--require-power",
        type=options.number(above=0, at_most=1),
        metavar="DROP",
        help="exit 3 (not 0) when nothing regressed but a quality check cannot catch a drop "
        "of DROP (e.g. 0.1 of a 0-1 metric) 4 times in 5: too few cases to trust a pass",
    )
    p.add_argument(
        "--max-failures",
        type=options.number(at_least=0, below=1),
        metavar="RATE",
        help="exit 1 when a config's requests failed on more than RATE of the candidate's "
        "cases (e.g. 0: any failed request fails the gate), whatever the tests say: on a "
        "few cases failure_rate cannot tell 2 failed of 6 from noise",
    )
    p.add_argument("--junit", type=options.output_file, metavar="FILE", help="write JUnit XML here")
    p.add_argument(
        "--summary",
        type=options.output_file,
        metavar="FILE",
        help='append a Markdown summary here (in GitHub Actions: "$GITHUB_STEP_SUMMARY")',
    )
    p.set_defaults(func=cmd_gate)
