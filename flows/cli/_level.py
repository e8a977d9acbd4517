"""A level's work for `plan` and `run`: the cases and work items a ``--level`` (and
``--limit``) runs of a sweep, the calibrated level's from the suite's item bank."""

from __future__ import annotations

import argparse


def refuse_unused_options(args: argparse.Namespace) -> None:
    """``--cases`` and ``--width`` mean something only at the calibrated level: refused
    elsewhere (bad input) rather than silently ignored."""
    from evaluation.errors import EvalError

    for option, value in (("--cases", args.cases), ("--width", getattr(args, "width", None))):
        if value is not None and args.level != "calibrated":
            raise EvalError(
                f"{option} applies only to --level calibrated (this is --level {args.level})"
            )


def work_of_level(
    sweep,
    level: str,
    limit: int | None,
    database: str | None = None,
    k: int | None = None,
    experiment: str | None = None,
) -> tuple[list, list, str]:
    """The cases and work items of a level for ``sweep`` run as ``experiment`` (default:
    the spec's name), and the calibrated level's fallback note ("" when none). The full
    level is read without evaluation.adaptive, which loads scipy (seconds that plan need
    not spend)."""
    if level == "calibrated":
        chosen, note = calibrated_cases(sweep, database, k, experiment)
        cases = chosen[:limit]
        ids = {case.id for case in cases}
        return cases, [item for item in sweep.work_items() if item.case.id in ids], note
    if level == "full":
        cases = list(sweep.cases)[:limit]
        ids = {case.id for case in cases}
        return cases, [item for item in sweep.work_items() if item.case.id in ids], ""
    from evaluation.adaptive import level_cases, level_work

    cases = level_cases(sweep.cases, level, suite=sweep.suite.name, limit=limit)
    return cases, level_work(sweep.work_items(), cases), ""


def calibrated_cases(
    sweep, database: str | None, k: int | None, experiment: str | None = None
) -> tuple[list, str]:
    """The ``calibrated`` level's cases for ``sweep`` run as ``experiment`` and its
    fallback in one line ("" when the bank serves); refused (exit 2, nothing written)
    without a bank or with more cases than the suite."""
    from evaluation.itembank import calibrated_size, sweep_cases
    from flows.cli._database import read_for_bank

    calibrated_size(len(sweep.suite.cases), k)
    cases, note = read_for_bank(
        database,
        f"--level calibrated needs an item bank for suite {sweep.suite.name!r}",
        lambda session: sweep_cases(session, sweep, k, experiment),
    )
    return cases, note
