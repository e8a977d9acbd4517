"""`evalflow plan`: a sweep's configs, generation count and estimated duration."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.redact import redact
from flows.cli import options
from flows.cli._level import refuse_unused_options, work_of_level
from flows.cli._sweep_options import experiment_option, level_options, time_scale_option
from flows.cli._width import fitted_stdout

if TYPE_CHECKING:
    from evaluation.run._sweep import Sweep


def cmd_plan(args: argparse.Namespace) -> int:
    from evaluation.run._preflight import check_before_run
    from evaluation.run._sweep import prepare_sweep

    refuse_unused_options(args)
    sweep = prepare_sweep(args.spec)
    check_before_run(sweep, simulated_only=True)  # simulated hosts need no server
    # the level's refusals (no bank, --cases over the suite) come before any output
    cases, items, note = work_of_level(
        sweep, args.level, args.limit, args.database, args.cases, args.experiment
    )
    _refuse_another_spec(args, sweep.spec.name, sweep.suite.name)  # as `run` refuses it
    with fitted_stdout():  # its lines fit the width, as show's
        return _plan(args, sweep, cases, items, note)


def _refuse_another_spec(args: argparse.Namespace, spec_name: str, suite: str) -> None:
    """`run`'s refusal of a spec run under the name of an experiment another spec ran
    (``SpecKept``), before any line; a database not there yet, or one it cannot read,
    refuses nothing (the measurements' note says why they were not read)."""
    from evaluation.errors import StorageError
    from evaluation.series import SpecKept, refuse_another_spec
    from evaluation.settings import database_url, no_database_yet
    from evaluation.storage.db import make_engine, session_scope

    url = database_url(args.database)
    if no_database_yet(url):
        return
    try:
        engine = make_engine(url, create=False, reads_only=True)
        try:
            with session_scope(engine) as session:
                name = args.experiment or spec_name
                refuse_another_spec(session, name, spec_name, suite, named=bool(args.experiment))
        finally:
            engine.dispose()
    except SpecKept:
        raise
    except StorageError:
        return


def _plan(
    args: argparse.Namespace,
    sweep: Sweep,
    cases: list,
    items: list,
    note: str,
) -> int:
    """`plan`'s lines, once its refusals are past."""
    from evaluation.run._context_check import context_warnings
    from evaluation.run._estimate import estimate, figures_for, format_estimate
    from evaluation.run._history import sweep_history
    from evaluation.run._probe import sweep_simulated_figures
    from evaluation.spec import PlanSubset, format_plan, make_plan

    subset = None
    if args.level != "full" or args.limit is not None:
        whole = " ".join(
            [*(["at level full"] if args.level != "full" else []),
             *(["without --limit"] if args.limit is not None else [])]
        )  # fmt: skip
        limit = f", first {args.limit}" if args.limit is not None else ""
        subset = PlanSubset(f"level {args.level}{limit}", whole, len(cases), len(items))
    plan = make_plan(sweep.spec, len(sweep.cases))
    print(redact(format_plan(plan, default_metrics=sweep.suite.default_metrics, subset=subset)))
    for line in context_warnings(sweep.work_items(), sweep.spec.hosts):
        print(f"warning: {line}")
    name = args.experiment or sweep.spec.name
    if note:
        print(f"note: {note}")
    if args.level == "calibrated":
        _calibrated_plan(args, sweep, len(cases))
    measured, stored, dropped, elsewhere, running, unread = sweep_history(
        args.database, name, sweep
    )
    if unread:
        print(f"note: {unread}")
    if sweep.spec.cases:
        print(sweep.cases_note(elsewhere, _cut_words(args, items)))
    pending = [item for item in items if item.key not in stored]
    if line := sweep.running_note(pending, running):
        print(line)
    if len(pending) < len(items):
        done = len(items) - len(pending)
        print(f"resume    {done} already stored in {name!r}, {len(pending)} to go")
    if dropped:  # what the run's warning will say
        print(
            f"note: {dropped.words()} of {name!r} not in this spec: `run` leaves them out of "
            "its leaderboard, comparison and report, kept stored (docs/specs-and-sweeps.md, "
            "Editing a spec)"
        )
    probed = []
    unmeasured = figures_for(pending, sweep.spec.hosts, measured)[1]
    if args.probe and unmeasured:
        probed = _probe(sweep, pending, unmeasured)
    strategy = sweep.spec.strategy
    scaled = args.time_scale > 0 or any(h.time_scale > 0 for h in sweep.spec.hosts)
    simulated = sweep_simulated_figures(sweep, pending, args.time_scale) if scaled else None
    result = estimate(pending, sweep.spec.hosts, measured, probed, simulated=simulated)
    print(
        format_estimate(
            result, pending, sweep.spec.hosts, race=strategy.race, race_budget=strategy.budget
        )
    )
    return 0


def _calibrated_plan(args: argparse.Namespace, sweep, planned: int) -> None:
    """How many cases an interval of ``--width`` needs on the calibrated level, and what
    that saves against the full suite (docs/calibrated-subsets.md); against the
    ``planned`` cases of the level line above, with the ``--cases`` that runs them."""
    from evaluation.itembank import cases_for_width, current_bank, sweep_metric
    from evaluation.storage.db import open_database, session_scope
    from evaluation.storage.repository import suite_fingerprint

    with session_scope(open_database(args.database, create=False, reads_only=True)) as session:
        metric = sweep_metric(session, sweep, args.experiment)
        bank = current_bank(session, sweep.suite.name, metric)
    if bank is None or bank.row.suite_digest != suite_fingerprint(sweep.suite):
        return  # the level's note said why: the subset's plain means, no width planned
    total = len(sweep.suite.cases)
    width_asked = 0.1 if args.width is None else args.width
    k, width = cases_for_width(bank, width_asked)
    if k >= total:
        print(
            f"calibrated a 95% interval {width_asked:.2f} wide needs the whole suite "
            f"({total} cases): nothing saved (a wider --width, or a larger suite)"
        )
        return
    if k <= planned:
        verdict = f"the {planned} planned above give it"
    else:
        verdict = f"not the {planned} planned above: run with `--cases {k}`"
    print(
        f"calibrated a 95% interval {width_asked:.2f} wide (±{width_asked / 2:.3f}) needs about "
        f"{k} of {total} cases per config (typical width there {width:.3f}), {verdict}; "
        f"{1 - k / total:.0%} of the full suite's generations saved"
    )


def _cut_words(args: argparse.Namespace, items: list) -> str:
    """How much of a spec's ``cases:`` a level or ``--limit`` runs ("--limit 3 runs the
    first 3 of them"); "" where it runs them all."""
    if args.level == "full" and args.limit is None:
        return ""
    runs = len({item.case.id for item in items})
    if args.level == "full":
        return f"--limit {args.limit} runs the first {runs} of them (in the suite's order)"
    limit = f" --limit {args.limit}" if args.limit is not None else ""
    return f"--level {args.level}{limit} runs {runs} of them"


def _probe(sweep, items, pairs: list[tuple[str, str]]) -> list:
    """Measure each (model, host) of ``pairs`` now (see evaluation/run/_probe.py), each
    request holding a slot of its host's Prefect limit as a run's requests do (on the
    embedded server, started for it, when no Prefect API is configured)."""
    import asyncio
    import os
    import socket

    from evaluation.run._preflight import check_before_run
    from evaluation.run._probe import probe
    from evaluation.run._sweep import open_backends
    from flows import run_control

    check_before_run(sweep)  # hosts up, models there: refused in one line otherwise
    slots = {h.name: h.slots for h in sweep.spec.hosts}
    print(
        "probe     sending a few real generations to measure "
        + ", ".join(f"{model} on {host} ({slots[host]} at once)" for model, host in pairs)
        + " now (nothing is stored)",
        flush=True,
    )

    async def measure():
        from evaluation.run._slot_waits import SlotWaits
        from tasks.adapters.host_limits import size_limits
        from tasks.adapters.host_slots import HostSlots
        from tasks.adapters.prefect_client import prefect_client

        hosts = tuple(h for h in sweep.spec.hosts if h.kind != "simulated")
        backends = open_backends(sweep)
        label = f"plan --probe (process {os.getpid()} on {socket.gethostname()})"
        try:
            async with prefect_client() as client:
                names = await size_limits(client, hosts)
                timeout_s = sweep.spec.limits.first_request_timeout_s
                slots = await HostSlots.open(client, names, timeout_s=timeout_s, label=label)
                waits = SlotWaits(  # a wait for another run's slots is said, once a host
                    say=lambda line: print(f"probe     {line}", flush=True),
                    whose=slots.holders,
                    give_up_s=timeout_s,
                    slots={h.name: h.slots for h in hosts},
                )
                ticking = asyncio.create_task(waits.keep_ticking())
                try:
                    return await probe(
                        items,
                        hosts,
                        backends,
                        sweep.suite,
                        set(pairs),
                        lanes=lambda host: slots.lane(host, waits.lane(host)),
                    )
                finally:
                    ticking.cancel()
                    await slots.close()
        finally:
            await asyncio.gather(*(b.aclose() for b in backends.values()))

    with run_control.embedded_prefect() as server:
        if server is not None:
            server.wait_ready()
        probed, problems = asyncio.run(measure())
    for line in problems:
        print(f"warning: {line}")
    return probed


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the `evalflow` parser."""
    p = sub.add_parser(
        "plan",
        help="print the expanded configs, generation count and estimated duration",
        description="Print the configs and generation count, and estimate the duration "
        "from throughput measured earlier on the same hosts and models (stored "
        "generations), or with --probe by measuring now.",
    )
    p.add_argument("spec", type=Path)
    experiment_option(p)
    level_options(p)
    p.add_argument(
        "--width",
        type=options.number(at_least=0.001, at_most=1),
        help="--level calibrated: the 95%% interval width to plan for (default 0.1)",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="measure now, with a few real generations, each host and model no earlier run "
        "measured (each request holds a host slot, as a run's do; nothing stored)",
    )
    time_scale_option(
        p, "estimate a run given this --time-scale, which sleeps each call's simulated latency × it"
    )
    p.set_defaults(func=cmd_plan)
