"""The ``calibrated`` level: which cases a run covers when its scores are to be read as
full-suite estimates, and when it must fall back to the plain subset."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from sqlmodel import Session

from evaluation.itembank._bank import (
    MIN_CONFIGS,
    PIPELINE_REASON,
    BankRefused,
    current_bank,
    model_family,
    stored_scores,
    why_not,
)
from evaluation.storage.repository import metrics_of_run, suite_fingerprint
from evaluation.suites import Case, Suite

C = TypeVar("C", bound=Case)
CALIBRATED_SHARE = 0.1


def calibrated_size(total: int, cases: int | None, *, nightly: bool = False) -> int:
    """How many cases the level runs: ``cases`` when given (refused above the suite's
    size, named as the option that set it), else 10% of the suite, at least 1."""
    if cases is not None and cases > total:
        option = "--nightly-cases" if nightly else "--cases"
        raise BankRefused(f"{option} {cases} is more than the suite's {total} cases")
    return cases if cases is not None else max(1, math.ceil(CALIBRATED_SHARE * total))


def calibrated_cases(
    session: Session,
    suite: Suite,
    models: Sequence[str],
    *,
    cases: int | None = None,
    pipeline: bool = False,
    metric: str | None = None,
    seed: int = 0,
) -> tuple[list[Case], str]:
    """The cases of the ``calibrated`` level for configs of ``models`` on ``suite``, in
    suite order: the first ``cases`` of the seeded, group-stratified order the subset
    level and the race use (so each reuses what the others generated), and a one-line
    note when the scores will be the subset's plain means, not the bank's estimates.
    Refused (bad input) when the suite has no bank (on ``metric``, the sweep's first: the
    one its estimates are shown on) or ``cases`` exceeds it.

    Why not the bank's most informative cases: measured (benchmarks/perf/
    itembank_benchmark.py, docs/calibrated-subsets.md), cases chosen for their estimated
    information are the cases whose parameters the fit got most wrong (the winner's
    curse of choosing on estimates), and their estimates erred more than the same
    bank's estimates from a random subset."""
    from evaluation.adaptive import stratified_order

    every = list(suite.cases)
    k = calibrated_size(len(every), cases)
    reason = calibrated_reason(session, suite, models, pipeline=pipeline, metric=metric)
    order = stratified_order(
        [c.id for c in every], [c.group for c in every], seed=seed, suite=suite.name
    )
    keep = set(order[:k])
    chosen = [c for c in every if c.id in keep]
    return chosen, (
        f"{reason}: the scores of these {k} cases will be their plain means, "
        "not full-suite estimates"
    ) if reason else ""


def calibrated_reason(
    session: Session,
    suite: Suite,
    models: Sequence[str],
    *,
    pipeline: bool = False,
    metric: str | None = None,
    nightly: bool = False,
) -> str:
    """Why the bank cannot turn the ``calibrated`` level's scores into full-suite
    estimates for configs of ``models`` on ``suite`` ("" when it can): the suite's
    content changed since its calibration, a model family it never saw, a pipeline.
    Refused (bad input) when the suite has no bank on ``metric``, naming the option
    that asked for the level (``--nightly-level`` for serve, deploy and the nightly)."""
    bank = current_bank(session, suite.name, metric)
    if bank is None:
        on = f" on {metric!r}" if metric else ""
        option = "--nightly-level" if nightly else "--level"
        raise BankRefused(
            f"{option} calibrated needs an item bank for suite {suite.name!r}{on} and there "
            f"is none: {how_to_bank(session, suite.name, metric)}"
        )
    if pipeline:
        return PIPELINE_REASON
    return why_not(bank, suite_fingerprint(suite), [model_family(m) for m in models])


def how_to_bank(session: Session, suite: str, metric: str | None) -> str:
    """What makes a bank for ``suite`` on ``metric`` from here: `evalflow bank` when
    enough configs ran the full suite, else how many more must run it first (the bank
    command would be refused until then)."""
    with_metric = f" --metric {metric}" if metric else ""
    bank = f"`evalflow bank {suite}{with_metric}`"
    try:
        scores = stored_scores(session, suite, metric)
        enough = int(((scores.w > 0).mean(1) >= 0.5).sum())
    except BankRefused:  # never run, or nothing scored on the metric
        enough = 0
    if enough >= MIN_CONFIGS:
        return f"{bank} calibrates one from stored results"
    return (
        f"a bank is calibrated from at least {MIN_CONFIGS} configs that ran the full suite "
        f"and {enough} did: run {MIN_CONFIGS - enough} more on it (--level full), then {bank}"
    )


def sweep_reason(
    session: Session,
    sweep,
    cases: int | None = None,
    *,
    nightly: bool = False,
    experiment: str | None = None,
) -> str:
    """:func:`calibrated_reason` for a sweep run as ``experiment`` (default: the spec's
    name), after refusing ``cases`` over its suite; ``nightly``: refusals name serve's
    and deploy's ``--nightly-*`` options."""
    calibrated_size(len(sweep.suite.cases), cases, nightly=nightly)
    return calibrated_reason(
        session,
        sweep.suite,
        [c.model for c in sweep.configs],
        pipeline=sweep.spec.pipeline is not None,
        metric=sweep_metric(session, sweep, experiment),
        nightly=nightly,
    )


def sweep_cases(
    session: Session, sweep, cases: int | None = None, experiment: str | None = None
) -> tuple[list[Case], str]:
    """:func:`calibrated_cases` for a sweep (``evaluation.run.Sweep``) run as
    ``experiment`` (default: the spec's name): its configs' models, and whether it runs a
    pipeline."""
    return calibrated_cases(
        session,
        sweep.suite,
        [c.model for c in sweep.configs],
        cases=cases,
        pipeline=sweep.spec.pipeline is not None,
        metric=sweep_metric(session, sweep, experiment),
    )


def sweep_metric(session: Session, sweep, experiment: str | None = None) -> str | None:
    """The metric a sweep's estimates are shown on, run as ``experiment`` (default: the
    spec's name): the run's primary, the leaderboard's (``metrics_of_run``: a ``rescore
    --first``'s choice stands)."""
    metrics = metrics_of_run(session, experiment or sweep.spec.name, sweep.metrics)
    return next(iter(metrics), None)
