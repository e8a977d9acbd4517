"""A speed alarm the machine's load explains. A decode speed or a latency is the
machine's as much as the model's: on a 2-core box whose load rose from 1 to 12 a night
read -40% tokens/s with the model and server unchanged, and ``trends --fail-on-alarm``
failed. Where the config's host is on the machine that ran the run, the run records
that machine's load (``ModelRan.machine_load``); an alarm on ``tokens_per_s`` or
``latency_p95`` whose night ran under a load that predicts at least half its change,
against the nights it was compared with, is set down to ``watch`` and says so. The
CUSUM is left as it is (its evidence restarts, and the night leaves the reference, as
after any alarm): no quality stream, and no night without a recorded load, changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from math import exp, log
from statistics import median

import numpy as np

from evaluation.series._series import SeriesPoint, same_model
from evaluation.series._stream_verdicts import Night

SPEED = ("tokens_per_s", "latency_p95")
EXPLAINED = 0.5
"""The share of an alarm's change (log units) that the load must predict alone."""


def set_down(
    nights: list[Night],
    points: Sequence[SeriesPoint],
    config: str,
    theta: np.ndarray,
    kept_out: np.ndarray,
    window: int,
) -> list[Night]:
    """``nights`` of a speed stream, each alarm the machine's load explains (against
    the nights it was compared with: the earlier ones neither partial nor ``kept_out``,
    at most ``window``) set down: no alarm, and ``Night.load`` says why."""
    loads = [night_load(p, config) for p in points]
    out = list(nights)
    for t, night in enumerate(nights):
        if not night.alarm:
            continue
        before = [r for r in range(t) if not nights[r].partial and not kept_out[r]][-window:]
        why = load_explains(float(theta[t]), loads[t], [loads[r] for r in before])
        if why:
            out[t] = replace(night, alarm=False, load=why)
    return out


def night_load(point: SeriesPoint, config: str) -> tuple[float, int] | None:
    """The load and CPUs of the machine that served ``config`` in ``point``: known only
    where every host that ran its model was on the run's machine (a host elsewhere has
    a load evalflow cannot read)."""
    model = point.config_models.get(config, "")
    ran = [m for m in point.models if same_model(m.model, model)]
    if not ran or any(m.machine_load is None or not m.machine_cpus for m in ran):
        return None
    load = max(m.machine_load or 0.0 for m in ran)
    return load, min(m.machine_cpus or 1 for m in ran)


def load_explains(
    change: float,
    tonight: tuple[float, int] | None,
    reference: Sequence[tuple[float, int] | None],
) -> str:
    """Why a speed alarm of ``change`` (log units, in the worse direction) is set down:
    "machine load 12.3 vs 1.1 in the reference nights, on 2 CPUs" where the load alone
    predicts at least ``EXPLAINED`` of it; "" where it does not, or a load is unknown.
    A run's processes get at most ``cpus / load`` of the cores they ask for, so the load
    predicts a slowdown of ``log(share then / share tonight)``."""
    known = [r for r in reference if r is not None]
    if change <= 0 or tonight is None or not known:
        return ""
    then = median(_share(*r) for r in known)
    predicted = log(then / _share(*tonight))
    if predicted < EXPLAINED * change:
        return ""
    before = median(load for load, _ in known)
    return (
        f"machine load {tonight[0]:.1f} vs {before:.1f} in the reference nights, on "
        f"{tonight[1]} CPUs (the load alone slows a run by up to {1 - exp(-predicted):.0%})"
    )


def _share(load: float, cpus: int) -> float:
    """The share of the cores it asks for a runnable process gets at ``load``."""
    return min(1.0, cpus / load) if load > 0 else 1.0
