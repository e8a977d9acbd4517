"""Operations commands: doctor, health, serve, deploy, baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.errors import EvalError, StorageError
from evaluation.redact import redact
from flows.cli import options
from flows.cli._database import open_engine
from flows.cli._demo import DEMO_SPEC, REPO
from flows.cli._prefect_check import prefect_check
from flows.cli.metrics import announce, endpoint_options, open_endpoints, serve_in_background

if TYPE_CHECKING:  # the checks import the backends: only `doctor` and `health` need them
    from evaluation.run import Check, DoctorReport

DEFAULT_TIMEOUT_S = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "doctor", help="check the Prefect API, the results database and every host of a spec"
    )
    p.add_argument(
        "spec", type=options.existing_file, nargs="?", help="a sweep spec whose hosts to check"
    )
    p.add_argument(
        "--timeout", type=options.seconds, default=DEFAULT_TIMEOUT_S, help="seconds per check"
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "health", help="exit 0 when healthy, 1 when not (for supervisors and orchestrators)"
    )
    p.add_argument(
        "spec", type=options.existing_file, nargs="?", help="a sweep spec whose hosts to check"
    )
    p.add_argument(
        "--timeout", type=options.seconds, default=DEFAULT_TIMEOUT_S, help="seconds per check"
    )
    p.set_defaults(func=cmd_health)

    p = sub.add_parser(
        "serve",
        help="serve the on-demand, nightly and weekly deployments from this process "
        "(named *-served, beside those of `deploy`)",
    )
    _schedule_options(p)
    endpoint_options(p, prefix="metrics-")
    p.add_argument(
        "--no-metrics",
        action="store_true",
        help="do not serve the metrics and health endpoints",
    )
    p.add_argument(
        "--limit",
        type=options.whole_number(),
        default=None,
        metavar="N",
        help="run at most N flow runs at once; due runs wait, oldest first (default: no "
        "limit; 1 keeps a series' nights one after another)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "deploy", help="register the deployments on a work pool, for a worker per GPU host"
    )
    p.add_argument(
        "--pool", type=options.text, default="evalflow", help="the work pool (create it first)"
    )
    p.add_argument(
        "--source",
        type=options.existing_folder,
        default=REPO,
        help="the checkout workers run from: the same path on every worker host",
    )
    _schedule_options(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser(
        "baseline",
        help="accept a run as its series' baseline, or withdraw a mistaken accept",
    )
    actions = p.add_subparsers(title="subcommands")
    p.set_defaults(func=cmd_baseline_without_action)
    accept = actions.add_parser(
        "accept",
        help="make an experiment the accepted baseline of its series (the one it joined "
        "with `run --series`, else its spec's)",
        epilog="example:\n  evalflow baseline accept nightly-2026-01-31",
    )
    accept.add_argument("experiment")
    accept.set_defaults(func=cmd_baseline_accept)
    withdraw = actions.add_parser(
        "withdraw",
        help="withdraw an experiment's accept (a mistaken one: accepting another run does "
        "not undo it); its series' streams are judged as the other accepts say, and the "
        "latest run still accepted is the baseline",
        epilog="example:\n  evalflow baseline withdraw nightly-2026-01-30",
    )
    withdraw.add_argument("experiment")
    withdraw.set_defaults(func=cmd_baseline_withdraw)


def cmd_baseline_without_action(args: argparse.Namespace) -> int:
    raise EvalError(
        "evalflow baseline needs a subcommand: accept EXPERIMENT or withdraw EXPERIMENT "
        "(see evalflow baseline --help)"
    )


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nightly-spec",
        type=options.existing_file,
        default=DEMO_SPEC,
        help="the spec the nightly regression sweep runs (default: the simulated demo)",
    )
    parser.add_argument(
        "--nightly-level",
        choices=("full", "calibrated"),
        default="full",
        help="calibrated: watch the nightly series on the suite's item bank (10%% of the "
        "cases, or --nightly-cases) and run the full suite the same night only when a "
        "quality stream moved beyond noise (docs/trends.md)",
    )
    parser.add_argument(
        "--nightly-cases",
        type=options.whole_number(),
        default=None,
        metavar="K",
        help="--nightly-level calibrated: how many cases a night runs (default 10%% of the suite)",
    )
    parser.add_argument(
        "--nightly-cron",
        type=options.cron,
        default="0 2 * * *",
        help="when the nightly sweep runs",
    )
    parser.add_argument(
        "--nightly-experiment",
        type=options.experiment_template,
        default=None,
        metavar="TEMPLATE",
        help="the nightly run's experiment name; {date} and {time} in it are the scheduled "
        "start's (UTC), e.g. qa-{date}-{time} for a --nightly-cron more often than daily "
        "(default: <spec name>-nightly-<date>: the runs of one day resume one experiment)",
    )
    parser.add_argument(
        "--retrain-cron",
        type=options.cron,
        default="0 4 * * 0",
        help="when the selector is retrained",
    )
    parser.add_argument(
        "--timezone", type=options.timezone, default="UTC", help="of the two schedules"
    )


def _schedule_kwargs(args: argparse.Namespace) -> dict:
    return {
        "nightly_spec": args.nightly_spec,
        "nightly_level": args.nightly_level,
        "nightly_cases": args.nightly_cases,
        "nightly_cron": args.nightly_cron,
        "nightly_experiment": args.nightly_experiment,
        "retrain_cron": args.retrain_cron,
        "timezone": args.timezone,
        "database": args.database,
    }


async def diagnose(
    spec: Path | None, database: str, timeout_s: float, *, noted: bool = True
) -> DoctorReport:
    """Every check: Prefect API, database, then the spec and its hosts. The database is
    read as every command that only reads reads it (``_read_as_readers_do``; ``noted``:
    its snapshot note said)."""
    from evaluation.run import Check, DoctorReport, check_database, check_spec
    from evaluation.run._doctor import hosts_in_use

    url, refused = _read_as_readers_do(database, noted=noted)
    database_check = refused or check_database(url, timeout_s=timeout_s, shown=database)
    checks = [await prefect_check(timeout_s), database_check]
    if spec is None:
        checks.append(Check("hosts", "warn", "no spec given: hosts not checked"))
    else:
        # only a database with evalflow's tables is read (opening one would create them)
        readable = checks[-1].facts.get("evalflow_tables", False)
        busy = hosts_in_use(url) if readable else {}
        stored = url if readable else None
        checks += await check_spec(spec, timeout_s=timeout_s, busy=busy, database=stored)
    return DoctorReport(tuple(checks))


def _read_as_readers_do(database: str, *, noted: bool = True) -> tuple[str, Check | None]:
    """The URL the checks open ``database`` by: a SQLite file in WAL mode whose folder may
    not be written (a read-only share of the results) as the snapshot every command that
    only reads opens, `evalflow metrics`'s /health/ready too (``storage.snapshot``, said in
    its note on stderr); else ``database``. Where it may not be read so (a -wal file with
    changes SQLite cannot read there), the failed database check saying why (recheck R6:
    the driver's "unable to open database file", where /health/ready said ok). Not
    ``noted``, the snapshot is read without its note (`health`, a probe polled every few
    seconds, said it on every probe)."""
    from evaluation.run import Check
    from evaluation.settings import sqlite_file
    from evaluation.storage.db import make_engine
    from evaluation.storage.snapshot import snapshot_note

    if sqlite_file(database, uri_filename=True) is None:  # another database: as it is
        return database, None
    try:
        engine = make_engine(database, create=False, reads_only=True)  # connects to nothing
    except StorageError as exc:
        return database, Check("database", "fail", str(exc))
    if noted and (note := snapshot_note(engine)):
        print(f"note: {note}", file=sys.stderr)
    return engine.url.render_as_string(hide_password=False), None


def cmd_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from evaluation.settings import database_url
    from flows.cli._width import terminal_columns

    report = asyncio.run(diagnose(args.spec, database_url(args.database), args.timeout))
    print(redact(report.render_text(terminal_columns())))
    return 0 if report.healthy else 1


def cmd_health(args: argparse.Namespace) -> int:
    import asyncio

    from evaluation.settings import database_url

    # a probe polled every few seconds: its verdict only, no snapshot note on every probe
    # (`doctor` says it; /health/ready reads the snapshot alike)
    report = asyncio.run(
        diagnose(args.spec, database_url(args.database), args.timeout, noted=False)
    )
    print(redact(report.one_line()))
    return 0 if report.healthy else 1


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _check_nightly_spec(args: argparse.Namespace) -> None:
    """Refuse a nightly spec that would fail at its first scheduled run, now, in one line;
    and a calibrated nightly level that has no item bank to watch on, or more cases than
    the suite."""
    from evaluation.run._sweep import prepare_sweep

    sweep = prepare_sweep(args.nightly_spec)
    _check_nightly_names(args, sweep.spec.name)
    if args.nightly_level != "calibrated":
        if args.nightly_cases is not None:
            raise EvalError(
                f"--nightly-cases applies only to --nightly-level calibrated (this is "
                f"--nightly-level {args.nightly_level})"
            )
        return
    reason = _calibrated_nightly(sweep, args.database, args.nightly_cases)
    if reason:
        _warn(
            f"{reason}: the nightly runs the full suite (and says so) until its item bank can serve"
        )


def _check_nightly_names(args: argparse.Namespace, series: str) -> None:
    """Warn where the nightly's runs would resume one experiment: a schedule more often
    than daily whose experiment name has no {time}, or a name with neither placeholder."""
    template = args.nightly_experiment
    fixed = template is not None and "{date}" not in template and "{time}" not in template
    if fixed:
        _warn(
            f"--nightly-experiment {template!r} holds neither {{date}} nor {{time}}: every "
            "nightly run resumes that one experiment, and the series does not grow"
        )
    elif fires_per_day(args.nightly_cron) > 1 and "{time}" not in (template or ""):
        name = template or f"{series}-nightly-{{date}}"
        _warn(
            f"--nightly-cron {args.nightly_cron!r} fires more than once a day and each run "
            f"of a day is experiment {name!r}: the later ones resume it and the series gains "
            f"one run a day; give --nightly-experiment '{series}-{{date}}-{{time}}'"
        )


def fires_per_day(cron: str) -> int:
    """How many times a five-field cron fires on a day it fires at all: its minutes times
    its hours (1 where a field is not read here)."""
    minute, hour = cron.split()[:2]
    return _field_size(minute, 60) * _field_size(hour, 24)


def _field_size(field: str, span: int) -> int:
    """How many values a cron field (``*``, ``*/15``, ``1-5``, ``0,30``, ``8-18/2``) takes."""
    values: set[int] = set()
    for part in field.split(","):
        body, _, step = part.partition("/")
        ends = [0, span - 1] if body == "*" else body.split("-", 1)
        if not all(str(end).isdigit() for end in ends):
            return 1  # a name or anything else: not read here
        low, high = int(ends[0]), int(ends[-1])
        if step and len(ends) == 1:
            high = span - 1  # "5/15": from 5 on
        values.update(range(low, high + 1, int(step) if step.isdigit() and int(step) else 1))
    return max(len(values), 1)


def _calibrated_nightly(sweep, database: str | None, cases: int | None) -> str:
    """Why the nightly cannot watch on the calibrated level now ("" when it can);
    refused without a bank or with more cases than the suite (exit 2, nothing written)."""
    from evaluation.itembank import calibrated_size, sweep_reason
    from flows.cli._database import read_for_bank

    calibrated_size(len(sweep.suite.cases), cases, nightly=True)
    return read_for_bank(
        database,
        f"--nightly-level calibrated needs an item bank for suite {sweep.suite.name!r}",
        lambda session: sweep_reason(session, sweep, cases, nightly=True),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from deployments.serve import serve_all
    from tasks.adapters.deployment_runs import run_control_from_settings

    control = run_control_from_settings()
    if control is not None:  # the server the deployments go to answers, before anything
        control.check_answers()
    _check_nightly_spec(args)
    if not args.no_metrics:
        spec = args.health_spec or args.nightly_spec
        app, sock = open_endpoints(
            args.metrics_host, args.metrics_port, args.database, spec, prefix="metrics-"
        )
        serve_in_background(app, sock)
        announce(args.metrics_host, args.metrics_port)
    serve_all(_warn, limit=args.limit, **_schedule_kwargs(args))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from deployments.serve import deploy_all

    _check_nightly_spec(args)
    ids = deploy_all(args.pool, _warn, source=args.source, **_schedule_kwargs(args))
    print(f"{len(ids)} deployments registered on work pool {args.pool!r}:")
    print("  evaluate/on-demand, nightly-regression/nightly, retrain-selector/weekly")
    print(f"start a worker on each GPU host: prefect worker start --pool {args.pool}")
    return 0


def cmd_baseline_accept(args: argparse.Namespace) -> int:
    from evaluation.itembank import BankEstimates
    from evaluation.series import watch_and_keep, watch_series
    from evaluation.series._render import accepted_lines
    from evaluation.storage.baselines import accept_baseline, accepted_words, take_the_write
    from evaluation.storage.db import session_scope

    with session_scope(open_engine(args)) as session:
        planned = accept_baseline(session, args.experiment, write=False)  # refused first
        before = None
        if planned.later and not planned.already:  # a later accept may now act otherwise
            take_the_write(session, args.experiment)  # read-only: refused before the watch
            before = watch_series(session, planned.series, banks=BankEstimates(session))
        acceptance = accept_baseline(session, args.experiment)
        watch = watch_and_keep(session, acceptance.series, banks=BankEstimates(session))
    print(accepted_words(acceptance))
    for line in accepted_lines(watch, acceptance.experiment, before):
        print(f"  {line}")
    return 0


def cmd_baseline_withdraw(args: argparse.Namespace) -> int:
    from evaluation.itembank import BankEstimates
    from evaluation.series import watch_and_keep, watch_series
    from evaluation.series._render import withdrawn_lines
    from evaluation.storage.baselines import take_the_write, withdraw_baseline, withdrawn_words
    from evaluation.storage.db import session_scope

    with session_scope(open_engine(args)) as session:
        series = withdraw_baseline(session, args.experiment, write=False).series  # refused first
        take_the_write(session, args.experiment)  # read-only: refused before the watch
        before = watch_series(session, series, banks=BankEstimates(session))
        withdrawal = withdraw_baseline(session, args.experiment)
        after = watch_and_keep(session, series, banks=BankEstimates(session))
    print(withdrawn_words(withdrawal))
    for line in withdrawn_lines(before, after, withdrawal.experiment):
        print(f"  {line}")
    return 0
