"""Selection commands: recommend, retrain."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from evaluation.errors import EvalError
from evaluation.suites import TASK_TYPES
from flows.cli import options
from flows.cli._verbose import print_masked_traceback
from flows.cli._width import fitted

if TYPE_CHECKING:
    from sqlmodel import Session

    from selection.recommendation import Recommendation

T = TypeVar("T")


def cmd_recommend(args: argparse.Namespace) -> int:
    from selection import recommend
    from selection._request import BadRequest

    try:  # on a fresh home it creates no database to find no selector in (selection._db)
        answer = recommend(
            args.task_type,
            max_latency_s=args.max_latency,
            max_energy_j=args.max_energy,
            min_quality=args.min_quality,
            prefer=args.prefer,
            version=args.version,
            database_url=args.database,
        )
    except BadRequest as exc:  # recommend() refuses bad arguments this way (its own
        raise EvalError(str(exc)) from exc  # faults are evalflow's: exit 1, not bad input)
    if answer.status == "unavailable":  # no usable database or selector: an error, exit 2
        raise EvalError(" ".join(answer.message.split()))
    print(fitted(answer.brief() if args.quiet else answer.explain()))
    if args.write_spec is not None:
        _write_spec(args.write_spec, answer, args.database)
    return 0 if answer.choice is not None else 1


def _write_spec(path: Path, answer: Recommendation, database: str | None) -> None:
    """`--write-spec FILE`: a spec of the `next:` configs (:mod:`selection.next_spec`);
    where there is none to write, a note says why and nothing is written: the exit code
    stays the answer's (a pick exited 1 for the spec it did not need)."""
    from sqlmodel import Session

    from evaluation.wording import counted
    from selection._db import engine_for
    from selection.next_spec import NothingToWrite, next_spec, to_yaml

    with engine_for(None, database, reads_only=True) as bound, Session(bound) as session:
        found = next_spec(session, answer)
    if isinstance(found, NothingToWrite):
        print(fitted(f"note: --write-spec: nothing written: {found.why}"))
        return
    with path.open("x", encoding="utf-8") as out:
        out.write(to_yaml(found.spec))
    count = len(found.configs)
    suite = Path(str(found.spec["suite"])).name
    cases = found.spec.get("cases")
    on = (
        f"{counted(len(cases), 'case')} of {suite} ({found.stored}: not run again)"
        if cases
        else suite
    )
    # its runs are SIMULATED where its hosts are: a plain retrain leaves them out (exit 1
    # where nothing else is stored: newcomer F2)
    retrain = "evalflow retrain --include-simulated" if found.simulated else "evalflow retrain"
    lines = [
        f"wrote {path}: {count} config{'s' * (count != 1)} to measure next on {on} (suite, "
        f"hosts and metrics of experiment {found.based_on}); `evalflow plan {path}`, "
        f"`evalflow run {path}`, then `{retrain}`"
    ]
    if found.metrics_changed:
        lines.append(f"  metrics: {found.metrics_changed}")
    if found.left_out:
        lines.append(f"  not in it: {'; '.join(found.left_out)}: write again once it has run")
    if answer.newer_results:  # the next: lines came from a version older than the results
        lines.append(
            f"  note: selector v{answer.version_id} is older than the stored results, so "
            f"what it asks to measure may have run since: {answer.newer_results}"
        )
    if running := _running_note(path, database):
        lines.append(f"  {running}")
    print(fitted("\n".join(lines)))


def _running_note(path: Path, database: str | None) -> str:
    """``Sweep.running_note`` of the spec just written at ``path``: runs in progress that
    will generate some of its work (a newcomer's was written while its sweep ran on, and
    then generated its 5 cases twice); "" where none will, or where the spec cannot be
    prepared (`plan` says why)."""
    from sqlmodel import Session

    from evaluation.run._sweep import prepare_sweep
    from evaluation.storage.running_work import running_work
    from selection._db import engine_for

    try:
        sweep = prepare_sweep(path)
    except EvalError:
        return ""
    hashes = [config.hash for config in sweep.configs]
    with engine_for(None, database, reads_only=True) as bound, Session(bound) as session:
        running = running_work(session, sweep.suite.name, hashes, sweep.spec.name)
    return sweep.running_note(sweep.work_items(), running)


def cmd_retrain(args: argparse.Namespace) -> int:
    from flows.cli._signals import stop_signals_as_interrupt

    # SIGTERM (systemd, a container's stop, a CI timeout) stops it as Ctrl-C does: its
    # line, exit 143 (SIGHUP: 129); Prefect's handler crashed the flow without a word (F7)
    with stop_signals_as_interrupt():
        return _retrain(args)


def _retrain(args: argparse.Namespace) -> int:
    from selection.frame import NotEnoughTrainingData, TrainingDataError

    if (refused := _too_little_to_train_on(args)) is not None:  # said before Prefect starts
        print(f"error: {_not_enough(args, refused)}", file=sys.stderr)  # (48 s under load)
        return 1
    from flows.cli._steps import Steps
    from flows.cli.logs import console_for
    from flows.run_control import prefect_api, sigterm_kept_from_prefect
    from selection.steps import LISTENERS

    steps = Steps("retrain", enabled=not args.quiet)  # it said nothing for 38-77 s
    try:
        with contextlib.ExitStack() as stack:
            with steps.quiet_for_long("starting Prefect"):
                from flows.retrain_selector import retrain_selector

                # first: importing Prefect's flow engine sets up its logging again
                stack.enter_context(sigterm_kept_from_prefect())
                console_for(args, result_says_it=True)
                stack.enter_context(prefect_api())
            LISTENERS.append(steps)
            stack.callback(LISTENERS.remove, steps)
            summary = retrain_selector(
                database=args.database,
                include_simulated=args.include_simulated,
                include_outcomes=not args.no_outcomes,
            )
    except NotEnoughTrainingData as exc:  # not bad input: exit 1 (README), with what to run
        print(f"error: {_not_enough(args, exc)}", file=sys.stderr)
        return 1
    except TrainingDataError as exc:  # a frame read from the results database, not given:
        if args.verbose:  # not bad input (exit 2), the command failed (exit 1)
            print_masked_traceback()
        print(f"error: the stored results cannot train a selector: {exc}", file=sys.stderr)
        return 1
    reason = summary["reason"]
    for line in _outcomes_lines(summary, args.include_simulated):
        print(fitted(line))
    if not summary.get("stored", True):  # a stored version learned from this data
        verdict = "current again" if summary["promoted"] else "kept"
        print(fitted(f"selector v{summary['version_id']} {verdict}: {reason}"))
        return 0
    if not reason.startswith(("promoted", "not promoted")):  # else it says so itself
        reason = f"{'promoted' if summary['promoted'] else 'kept, not promoted'}. {reason}"
    print(
        fitted(
            f"selector v{summary['version_id']} trained on {summary['generations']} "
            f"generations: {reason}"
        )
    )
    return 0


def _outcomes_lines(summary: dict, include_simulated: bool) -> list[str]:
    """What `retrain` says of the recorded outcomes (``selection.record_outcome``) before
    its result: how many fed the fit, or were left out (``--no-outcomes``), and those
    left out as on a config it learns no run of (without ``--include-simulated``, one of
    the simulated backend's: the newcomer's F8, stop 71); none where none is stored. It
    said nothing of them: a fit moved by outcomes read as one on the stored generations
    alone."""
    from evaluation.wording import counted
    from selection.outcomes import OUTCOME_WEIGHT

    lines = []
    if used := summary.get("outcomes", 0):
        lines.append(
            f"learned from {counted(used, 'recorded outcome')} too (record_outcome), each "
            f"counting {OUTCOME_WEIGHT:g} of a generation: `evalflow retrain"
            f"{' --include-simulated' * include_simulated} --no-outcomes` leaves them out"
        )
    if left_out := summary.get("outcomes_left_out", 0):
        lines.append(f"left out {counted(left_out, 'recorded outcome')} (--no-outcomes)")
    if unmeasured := summary.get("outcomes_unmeasured", 0):
        on, it = ("a config", "it") if unmeasured == 1 else ("configs", "them")
        lines.append(
            f"left out {counted(unmeasured, 'recorded outcome')} on {on} with no "
            + (
                "run stored"
                if include_simulated
                else f"real run stored (SIMULATED: `evalflow retrain --include-simulated` "
                f"learns from {it})"
            )
        )
    return lines


def _not_enough(args: argparse.Namespace, exc: Exception) -> str:
    """`retrain`'s error line for too little data, with the note that simulated results
    are stored and left out where they are."""
    from evaluation.storage.training import has_simulated_rows
    from selection.frame import NotEnoughTrainingData

    left_out = not args.include_simulated and _stored(
        args, has_simulated_rows, absent=False, unknown=False
    )
    if not left_out or NotEnoughTrainingData.SIMULATED_LEFT_OUT in str(exc):  # (the flow's)
        return str(exc)
    return f"{exc}; {NotEnoughTrainingData.SIMULATED_LEFT_OUT}"


def _too_little_to_train_on(args: argparse.Namespace) -> Exception | None:
    """Why the results database holds too little for `retrain` to learn from (no
    generation, or fewer (config, suite) pairs than a selector needs), from two queries
    (no database yet: nothing), so that it is refused at once instead of after Prefect's
    start and a flow (a newcomer with 1 pair waited 48 s); None where it may be enough
    or the tables are not evalflow's (yet: the flow says what is wrong)."""
    from evaluation.storage.training import has_training_rows, training_pairs
    from selection.frame import NotEnoughTrainingData

    simulated = args.include_simulated

    def found(session: Session) -> tuple[bool, int]:
        if not has_training_rows(session, include_simulated=simulated):
            return False, 0
        return True, training_pairs(session, include_simulated=simulated)

    enough = (True, NotEnoughTrainingData.MIN_PAIRS)
    any_row, pairs = _stored(args, found, absent=(False, 0), unknown=enough)
    if not any_row:
        return NotEnoughTrainingData.nothing_stored(False)  # _not_enough says the rest
    if pairs < NotEnoughTrainingData.MIN_PAIRS:
        return NotEnoughTrainingData.too_few(pairs)
    return None


def _stored(args: argparse.Namespace, query: Callable[[Session], T], *, absent: T, unknown: T) -> T:
    """``query`` on the results database (a query or two): ``absent`` where there is no
    database yet, ``unknown`` where its tables are not evalflow's (yet)."""
    from evaluation.settings import database_url, no_database_yet

    url = database_url(args.database)
    if no_database_yet(url):
        return absent
    from evaluation.errors import StorageError
    from evaluation.storage.db import make_engine, session_scope

    engine = make_engine(url, create=False)  # another application's: refused here
    try:
        with session_scope(engine) as session:
            return query(session)
    except StorageError:  # not evalflow's tables (yet): the flow says what is wrong
        return unknown
    finally:
        engine.dispose()


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "recommend",
        help="recommend a config for a task type under limits",
        description="Recommend a config for a task type under limits, from the promoted\n"
        "selector: train one first with `evalflow retrain` (after the simulated demo:\n"
        "`evalflow retrain --include-simulated`). Exits 0 with a pick, 1 where nothing\n"
        "meets the limits or there is nothing to answer from, 2 on bad input;\n"
        "--write-spec with nothing to write says so in a note and leaves the exit code\n"
        "as it is.",
    )
    p.add_argument("task_type", choices=TASK_TYPES, help="the kind of task")
    p.add_argument("--max-latency", type=options.seconds, help="seconds per answer (p95)")
    p.add_argument("--max-energy", type=options.positive, help="joules per generation")
    p.add_argument(
        "--min-quality",
        type=options.share,
        help="0-1 on the task type's quality metric (0.7, not 70)",
    )
    p.add_argument(
        "--prefer",
        choices=["quality", "speed"],
        default="quality",
        help="rank the feasible configs by quality, or by speed (lowest estimated median latency)",
    )
    p.add_argument(
        "--version", type=options.count, help="selector version (default: the promoted one)"
    )
    p.add_argument(
        "--write-spec",
        type=options.new_file,
        metavar="FILE",
        help="also write a spec of the configs the next: lines name (plan/run take it)",
    )
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("retrain", help="train a new selector version; promote it if not worse")
    p.add_argument(
        "--include-simulated", action="store_true", help="also learn from SIMULATED results"
    )
    p.add_argument(
        "--no-outcomes",
        action="store_true",
        help="do not learn from the outcomes applications recorded (record_outcome)",
    )
    p.set_defaults(func=cmd_retrain)
