"""`evalflow run`: a sweep end to end, resumed where it was interrupted."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shlex
import sys
import time
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from evaluation.errors import DatabaseBusy, EvalError, HostsOverloaded, TryLater
from evaluation.redact import PASSWORD_NOTE, redact_argv
from evaluation.wording import failed_words
from flows import stop_signals
from flows.cli import options
from flows.cli._database import open_engine, shown_database
from flows.cli._level import calibrated_cases, refuse_unused_options, work_of_level
from flows.cli._run_words import (
    empty_outputs,
    hosts_words,
    next_steps,
    smoke_lines,
    spec_words,
    starting_line,
    unscored_metrics,
    verdict_lines,
)
from flows.cli._signals import exit_code, say_stopped, stop_signals_as_interrupt
from flows.cli._sweep_options import experiment_option, level_options, time_scale_option
from flows.cli._verbose import print_masked_traceback
from flows.cli._width import fitted, fitted_command, known_columns
from flows.cli.logs import console_for, left_to_the_display
from flows.cli.results import stored_leaderboard

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evaluation.run._sweep import Sweep
    from flows.embedded_server import EmbeddedServer

T = TypeVar("T")

IN_FLIGHT_WAIT_S = 5.0  # `run --interrupt-wait`: a few generations' time on a real host
MAX_WORKERS = 64  # `run --workers`: lane worker processes (docs/throughput.md)


def cmd_run(args: argparse.Namespace) -> int:
    from evaluation.run._heap import arrow_from_malloc, fewer_collections
    from evaluation.run._sweep import prepare_sweep

    refuse_unused_options(args)
    fewer_collections()  # a run's process: millions of objects that live as long as it
    arrow_from_malloc()  # what its stages free goes back to the system (_heap)
    # A bad spec is refused before Prefect's server launches and the run's machinery is
    # imported: neither takes the CPU from the refusal.
    began = time.monotonic()
    sweep = None
    try:  # a signal before the claim: nothing of this run is stored (after it: run_control)
        with stop_signals_as_interrupt():
            sweep = prepare_sweep(args.spec)
            prepared = time.monotonic()
            with stop_signals.held():  # taken once imported: an import cut in half fails
                from flows import run_control

            # Prefect's server imports for seconds: they start now, beside the checks below.
            with run_control.launched_server() as launched:
                return _run(args, launched, sweep, (began, prepared))
    except KeyboardInterrupt as interrupt:
        if getattr(args, "claimed", False):
            raise
        from evaluation.settings import database_url
        from flows import run_control

        name = args.experiment or (sweep.spec.name if sweep is not None else None)
        resume = _resume(args)
        line = run_control.before_the_claim(database_url(args.database), name, resume)
        say_stopped(fitted_command(line.rstrip(), resume))
        return exit_code(interrupt)


def _resume(args: argparse.Namespace) -> str:
    """The command that runs it again (resuming what is stored) from any folder: the
    command line as typed, the spec's path and a SQLite ``--database`` file's made
    absolute (a relative one ran only from where the run was started), shell-quoted; no
    password shown, and where one was masked, a note that says so."""
    words = redact_argv(args.argv)
    masked = words != list(args.argv)
    spec = _spec_word(words, args.spec)
    for i, word in enumerate(words):
        shown = os.path.abspath(os.path.expanduser(word)) if i == spec else None
        words[i] = shown or shown_database(words, i)
    return shlex.join(["evalflow", *words]) + PASSWORD_NOTE * masked


def _spec_word(words: list[str], spec: Path) -> int | None:
    """Where in ``words`` (after the verb) the spec's path was given: the word that names
    it, the first not after an option where several do (``--experiment demo demo``)."""
    verb = words.index("run") if "run" in words else 0
    found = [i for i in range(verb + 1, len(words)) if Path(words[i]) == spec]
    alone = [i for i in found if not words[i - 1].startswith("-")]
    return (alone or found or [None])[0]


def _run(
    args: argparse.Namespace,
    launched: EmbeddedServer | None,
    sweep: Sweep,
    times: tuple[float, float],
) -> int:
    """``times``: when reading the spec began and ended (the display's first phase)."""
    import asyncio

    from evaluation.run._preflight import check_before_run
    from evaluation.settings import database_url
    from evaluation.storage.db import make_engine
    from evaluation.storage.runs import level_words
    from flows import run_control
    from flows.cli._prefect_check import refuse_an_api_that_does_not_answer

    began, prepared = times
    name = args.experiment or sweep.spec.name
    database = database_url(args.database)
    engine = _keeps_its_series_and_spec(database, name, args, sweep)
    # Refuse unreachable hosts and missing models before Prefect starts.
    check_before_run(sweep)
    chosen = None
    if args.level == "calibrated":  # no bank, too many cases: refused before any claim
        cases, note = calibrated_cases(sweep, args.database, args.cases, args.experiment)
        if note:
            print(f"note: {note}")
        chosen = len(cases[: args.limit])
        ids = {case.id for case in cases[: args.limit]}
        items = [item for item in sweep.work_items() if item.case.id in ids]
    else:
        items = work_of_level(sweep, args.level, args.limit)[1]
    refuse_an_api_that_does_not_answer()  # the user's PREFECT_API_URL, before any claim
    checked = time.monotonic()
    resume = _resume(args)  # stored with the claim: `show` prints it
    engine = engine or make_engine(database)
    process, dead = run_control.claim(
        engine,
        name,
        wait=args.wait,
        command=resume,
        task_type=sweep.suite.task_type,
        level=level_words(args.level, args.limit),
        simulated=sweep.simulated,
    )
    args.claimed = True  # from here on a signal is run_control.interruptible's
    if not args.quiet:  # the first line, before Prefect's seconds of start-up
        line = starting_line(
            sweep,
            name,
            launched is not None,
            level=args.level,
            limit=args.limit,
            count=chosen,
            stored=_stored_of(engine, name, items),
        )
        print(fitted(line), file=sys.stderr, flush=True)
    with (
        run_control.interruptible(  # from the claim on: a signal marks it interrupted
            database,
            name,
            process,
            resume,
            launched,
            wait_s=args.interrupt_wait,
            fit=functools.partial(fitted_command, command=resume, width=known_columns()),
        ),
        run_control.embedded_prefect(launched) as server,
        run_control.sigterm_kept_from_prefect(),
    ):
        from flows.evaluate import evaluate

        console_for(args)

        try:
            from flows.cli.progress import run_progress  # rich: only `run` draws a display

            slots = sum(host.slots for host in sweep.spec.hosts)
            with run_progress(enabled=not args.quiet, slots=slots) as display:
                if display is not None:
                    left_to_the_display(True)
                    display.done("preparing", prepared - began, spec_words(sweep))
                    display.done("checking hosts", checked - prepared, hosts_words(sweep))
                    where = "a local server" if server is not None else "the Prefect API"
                    display.phase("starting Prefect", where, since=checked)
                if server is not None:
                    with _prefect_start_said(args, name, checked, display is None):
                        server.wait_ready()
                from tasks.adapters.crashed_runs import mark_crashed

                mark_crashed(dead)  # the flow run of a killed run of this experiment
                summary = asyncio.run(
                    _states_sent_soon(  # a busy server's answer: 0.05 s, not Prefect's 2 s
                        evaluate(
                            spec_path=str(args.spec),
                            experiment=args.experiment,
                            database=args.database,
                            simulated_time_scale=args.time_scale,
                            level=args.level,
                            limit=args.limit,
                            series=args.series,
                            cases=args.cases,
                            workers=args.workers,
                        )
                    )
                )
        except Exception as exc:
            from tasks.adapters.prefect_client import busy_as_try_later

            # Prefect's engine stopped by the run's API busy for the whole budget (a
            # state of its flow run, an artifact), as evalflow's slot writes stop it
            ended = exc if isinstance(exc, TryLater) else busy_as_try_later(exc) or exc
            reason = run_control.record_failure(database, name, process, ended, args.known)
            then = _what_then(database, name, resume)
            if run_control.was_cancelled(exc):
                print(f"cancelled: {name!r} stopped ({reason}); {then}", file=sys.stderr)
                return run_control.INTERRUPTED_EXIT_CODE
            from evaluation.adaptive import SmokeFailed

            if isinstance(exc, SmokeFailed):  # the hosts', not the input's: exit 1, resume
                print(smoke_lines(exc, resume), file=sys.stderr)
                return 1
            if isinstance(exc, HostsOverloaded):  # interrupted, nothing lost: try later
                again = (
                    f"interrupted: {reason}; run the same command again when the server "
                    f"is free: {resume}"
                )
                print(fitted_command(again, resume), file=sys.stderr)
                return os.EX_TEMPFAIL  # 75, as a refusal for now (app.EXIT_TRY_LATER)
            if isinstance(exc, DatabaseBusy):  # another's write: interrupted, exit 75
                raise DatabaseBusy(f"{reason}; {then}") from exc
            if isinstance(ended, TryLater):  # its Prefect API stayed busy: interrupted
                print(fitted_command(f"interrupted: {reason}: {resume}", resume), file=sys.stderr)
                return os.EX_TEMPFAIL
            if isinstance(exc, EvalError):
                raise
            if args.verbose:
                print_masked_traceback()
            print(f"error: the run failed: {reason}; {then}", file=sys.stderr)
            return 1
        finally:
            left_to_the_display(False)
    if display is not None:  # the display kept the comparison's log lines off the terminal
        print("\n" + "\n".join(verdict_lines(summary["comparison"])) + "\n")
    board, text = stored_leaderboard(args, summary["experiment"])
    print(text)
    # the lines under it fit the width where it is known, as show's (82-94 at 80 columns)
    left_out = summary["left_out_by_level"]
    resumed = summary["skipped_already_done"]  # a first run resumed nothing: not said
    done = (
        f"\n{summary['generated']} generated, "
        f"{failed_words(summary['failed'], summary.get('never_answered', 0))}"
        + (f", {resumed} already done (resumed)" if resumed else "")
        + (f", {left_out} left out by --level/--limit." if left_out else ".")
    )
    print(fitted(done))
    if empty := empty_outputs(board):
        print(fitted(f"warning: {empty} (EMPTY OUTPUTS above)"))
    if unscored := unscored_metrics(board):
        print(fitted(f"warning: {unscored}"))
    if summary["failed"]:
        print(fitted("\n".join(_failures(args, summary["experiment"]))))
        # A failed generation is not done: the same command redoes only those.
        again = (
            f"once that is fixed (a host that went down restarted), resume with: {resume} "
            f"(it does only the {summary['failed']} failed)"
        )
        print(fitted_command(again, resume))
    with_outputs = sum(1 for row in board.rows if row.get("generations_ok"))
    print(
        next_steps(
            summary["experiment"],
            summary["report"],
            args.argv,
            known_columns(),
            pairs=with_outputs >= 2,
        )
    )
    return 0 if summary["failed"] == 0 else 1


async def _states_sent_soon(flow_run: Awaitable[T]) -> T:
    """``flow_run``, its states written through evalflow's client (``engine_client``)."""
    from tasks.adapters.prefect_client import engine_client

    async with engine_client():
        return await flow_run


def _prefect_start_said(
    args: argparse.Namespace, name: str, began: float, off_a_terminal: bool
) -> AbstractContextManager[None]:
    """While the local Prefect server starts (44 s on a newcomer's first run, load 5):
    off a terminal (a log), a line every 10 s that it still does, with the seconds since
    it began, ``name: starting Prefect, still · 10 s`` (the first line said it starts);
    a terminal's display counts them itself, and -q says nothing."""
    from flows.cli._steps import Steps

    if args.quiet or not off_a_terminal:
        return contextlib.nullcontext()
    return Steps(name, began=began).quiet_for_long("starting Prefect", said=True)


def _what_then(database: str, name: str, resume: str) -> str:
    """After a failed or cancelled run: "resume with: <command>" where the experiment has
    generations stored, "nothing was stored" where it has none (its Prefect server did
    not start: a resume hint there promised what was not there)."""
    from sqlalchemy.exc import SQLAlchemyError

    from evaluation.errors import StorageError
    from flows.run_control import has_stored

    try:
        stored = has_stored(database, name)
    except (SQLAlchemyError, StorageError):  # cannot tell: the command is still the way
        stored = True
    return f"resume with: {resume}" if stored else "nothing was stored"


def _failures(args: argparse.Namespace, experiment: str) -> list[str]:
    """Why the run's generations failed, as `show` says it."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from flows.cli.results import failure_lines

    with session_scope(open_engine(args)) as session:
        return failure_lines(session, get_experiment(session, experiment), args.argv)


def _keeps_its_series_and_spec(
    database: str, name: str, args: argparse.Namespace, sweep: Sweep
) -> Engine | None:
    """A rerun keeps its series and its spec: another refused (exit 2) before the hosts
    are asked (a busy host's check waited 48 s before this database check) and before
    the claim; the database's engine, for the run. A database that holds no experiment
    (a SQLite file not created yet or empty, a PostgreSQL database just created) has no
    rerun to refuse: left as it is, no table made (None), so that a refusal after this
    one (the hosts') writes nothing; the claim makes them."""
    from sqlalchemy import inspect

    from evaluation.series import refuse_another_series, refuse_another_spec
    from evaluation.settings import no_database_yet, sqlite_file
    from evaluation.storage.db import make_engine, session_scope

    path = sqlite_file(database)
    if no_database_yet(database) or (path is not None and path.stat().st_size == 0):
        return None  # reading an empty SQLite file would write its header
    looked = make_engine(database, create=False)  # another application's refused here
    try:
        if not inspect(looked).has_table("experiments"):
            return None
    finally:
        looked.dispose()
    engine = make_engine(database)  # evalflow's: brought up to date, as every verb does
    with session_scope(engine) as session:
        refuse_another_series(session, name, args.series)
        refuse_another_spec(
            session, name, sweep.spec.name, sweep.suite.name, named=bool(args.experiment)
        )
    return engine


def _stored_of(engine, name: str, items) -> int:
    """How many of ``items`` (this run's work) experiment ``name`` has already generated:
    those a resume does not run again (of configs its spec dropped and got back too)."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.throughput import stored_keys

    with session_scope(engine) as session:
        stored = stored_keys(session, name)
    return sum(item.key in stored for item in items)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser("run", help="run a sweep end to end (resumes if interrupted)")
    p.add_argument("spec", type=Path)
    experiment_option(p)
    time_scale_option(p, "each call sleeps its simulated latency × this factor")
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is running this experiment, wait for it instead of refusing",
    )
    p.add_argument(
        "--interrupt-wait",
        type=options.non_negative,
        default=IN_FLIGHT_WAIT_S,
        metavar="SECONDS",
        help="on Ctrl-C or SIGTERM, wait up to this long for the requests in flight so "
        "their answers are stored, not asked again by the rerun (a second Ctrl-C exits "
        f"at once; default {IN_FLIGHT_WAIT_S:g})",
    )
    p.add_argument(
        "--series",
        type=options.series_name,
        metavar="NAME",
        help="join this run to series NAME (default: the series of the spec's name); a "
        "rerun keeps the series its experiment joined; see `evalflow trends`",
    )
    p.add_argument(
        "--workers",
        type=options.whole_number(1, MAX_WORKERS),
        default=1,
        metavar="N",
        help="generate from N processes (default 1: this one); only for hosts whose slots "
        "answer faster than one process sends, ~1,000 generations/s: see docs/throughput.md",
    )
    level_options(p)
    p.set_defaults(func=cmd_run)
