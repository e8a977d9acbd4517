"""One stream's verdict (``_stream``): a config × metric's per-case values night by
night, judged by the CUSUM (``_watch``) against the nights before, with what each night
shows and draws, the change behind its last alarm and the cases that flipped."""

from __future__ import annotations

from collections.abc import Sequence
from math import erfc, exp, sqrt

import numpy as np
import pandas as pd

from evaluation.calibration._shown import DIFFERENCE, cut
from evaluation.series._machine_load import SPEED, set_down
from evaluation.series._series import SeriesPoint
from evaluation.series._stream_verdicts import OPERATIONAL, Night, StreamVerdict
from evaluation.series._watch import (
    LATENCY_FLOOR,
    LATENCY_MIN_N,
    WatchSettings,
    mean_stream_z,
    p95_stream_z,
    watch_stream,
)

PARTIAL_SHARE = 0.5  # a run with fewer cases than this share of the fullest is partial


def _stream(
    points: Sequence[SeriesPoint],
    config: str,
    metric: str,
    higher: bool,
    per_night: Sequence[pd.Series],
    settings: WatchSettings,
    streams: int,
    weights: pd.Series | None = None,
    ran: Sequence[str] | None = None,
    prior: Sequence[pd.Series] = (),
    left_out: Sequence[bool] | None = None,
) -> StreamVerdict:
    """One stream's verdict. ``weights`` (per case): the night's change is judged as
    the change of ``Σ weights · scores`` (the item bank's full-suite estimate, to its
    linear part) rather than of the cases' mean. ``ran`` (per night): the config the
    stream's label ran there, where it changed under the label (``watch_stream``'s
    ``changed``: the first night's config is the level). ``prior`` (per night): other
    runs of the stream (those before its model's event, ``_across``), never its
    reference, whose night-to-night changes teach the spread too (``_watch._with_prior``):
    it judges as soon as those and its own have taught the ``learning`` changes.
    ``left_out`` (per night): nights judged but kept out of the later nights' reference
    and spread from the start, as an alarmed night is (``_accepted._back``)."""
    k = settings.allowance(metric)
    h = settings.threshold(streams, k)
    cases = sorted(set().union(*(s.index for s in per_night)))
    grid = np.array([s.reindex(cases).to_numpy(dtype=float) for s in per_night])[None]
    earlier = None
    if prior:
        earlier = np.array([s.reindex(cases).to_numpy(dtype=float) for s in prior])[None]
        held = np.sum(np.isfinite(earlier[0]), axis=-1)
        earlier[0, held < PARTIAL_SHARE * held.max(initial=0)] = np.nan
    judged_on = grid
    if weights is not None:  # mean over cases of n·w·x = Σ w·x
        scale = weights.reindex(cases).to_numpy(dtype=float) * len(cases)
        judged_on = grid * np.where(np.isfinite(scale), scale, np.nan)
    counts = np.sum(np.isfinite(grid[0]), axis=-1)
    partial = counts < PARTIAL_SHARE * counts.max()  # a smoke-level night among full ones
    measured = grid[0].copy()  # a partial night's own figure is still shown
    grid[0, partial] = np.nan  # not compared with full nights, nor a reference for them
    judged_on[0, partial] = np.nan

    def z_of(excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if metric == "latency_p95":
            return p95_stream_z(
                grid,
                window=settings.window,
                learning=settings.learning,
                floor=LATENCY_FLOOR,
                excluded=excluded,
                prior=earlier,
            )
        return mean_stream_z(
            judged_on,
            higher_is_better=higher,
            window=settings.window,
            learning=settings.learning,
            excluded=excluded,
            prior=earlier,
        )

    changed = None
    if ran is not None:
        number = {c: i for i, c in enumerate(dict.fromkeys(ran))}
        changed = np.array([[number[c] for c in ran]])
    out = None if left_out is None else np.array([left_out], dtype=bool)
    theta, var, z, path, alarms, out = watch_stream(z_of, grid.shape[:-1], k, h, changed, out)
    theta, var, z, path, alarms, out = theta[0], var[0], z[0], path[0], alarms[0], out[0]
    sign = -1.0 if higher else 1.0  # theta is in the worse direction
    nights = []
    unit = _on_unit_scale(metric, grid)
    shown = [_shown(point, config, metric, measured[t]) for t, point in enumerate(points)]
    drawn = [v for v, _, _ in shown] if weights is not None else _drawn(metric, measured, shown)
    for t, point in enumerate(points):
        value, low, high = shown[t]
        judged = bool(np.isfinite(z[t]))
        change = _change(metric, sign * theta[t]) if np.isfinite(theta[t]) else None
        bounds = (None, None)
        if change is not None and np.isfinite(var[t]):
            # The interval of the test behind z and p (day effects and the t's few
            # nights included): its 95% ends exclude no change just when the one-sided
            # p < 0.025. Unjudged nights show the within-night error only.
            se = abs(theta[t] / z[t]) if judged and z[t] != 0 else sqrt(var[t])
            half = 1.96 * se
            ends = sorted(_change(metric, sign * theta[t] + d) for d in (-half, half))
            bounds = (ends[0], ends[1])
            if unit:  # cut to the scale: each end keeps its side of 0, and the states theirs
                bounds = cut(*bounds, DIFFERENCE)
        nights.append(
            Night(
                experiment=point.experiment,
                value=value,
                drawn=drawn[t],
                low=low,
                high=high,
                change=change,
                change_low=bounds[0],
                change_high=bounds[1],
                z=float(z[t]) if judged else None,
                p=0.5 * erfc(float(z[t]) / sqrt(2)) if judged else None,
                evidence=float(path[t]),
                alarm=bool(alarms[t]),
                judged=judged,
                partial=bool(partial[t]),
                scored=bool(counts[t] > 0),
                moved=not judged
                and bounds[0] is not None
                and bounds[1] is not None
                and (bounds[0] > 0 or bounds[1] < 0),
                too_few=_too_few(metric, int(counts[t])),
            )
        )
    if metric in SPEED:  # an alarm the machine's load explains is set down to watch
        nights = set_down(nights, points, config, theta, out, settings.window)
    # the evidence and the flipped cases of the last night judged, not of a partial one
    j = max((t for t in range(len(points)) if not partial[t]), default=len(points) - 1)
    since, by = _run(points[: j + 1], path[: j + 1], alarms[: j + 1], theta[: j + 1], sign, metric)
    reference: tuple[str, ...] = ()
    if since is not None:
        start = next(i for i, p in enumerate(points) if p.experiment == since)
        full = [  # the nights it was compared with: none partial, none kept out
            p.experiment
            for p, n, kept_out in zip(points[:start], nights, out, strict=False)
            if not n.partial and not kept_out
        ]
        reference = tuple(full[-settings.window :])
    flipped = (
        _flipped(grid[0, : j + 1], higher) if metric not in OPERATIONAL and nights[j].alarm else ()
    )
    return StreamVerdict(
        config=config,
        label=points[-1].configs.get(config, config),
        metric=metric,
        higher_is_better=higher,
        nights=tuple(nights),
        threshold=h,
        segment_start=points[0].experiment,
        since=since,
        by=by,
        flipped=tuple(cases[i] for i in flipped),
        reference=reference,
        carried=_steps(earlier),
    )


def _on_unit_scale(metric: str, grid: np.ndarray) -> bool:
    """Whether the stream's change is a difference of two means on the unit scale (every
    case's value in [0, 1]: a 0–1 score, a failure), whose interval is shown cut to
    [-1, 1] as every interval is cut to its scale (``evaluation.calibration._shown``): a
    t interval on few nights reached past it (ncwatch-4: ``-0.433 [-1.197, +0.330]``)."""
    if metric in SPEED:
        return False
    finite = grid[np.isfinite(grid)]
    return bool(finite.size) and bool(((finite >= 0) & (finite <= 1)).all())


def _steps(prior: np.ndarray | None) -> int:
    """The night-to-night changes among ``prior`` nights ``[1, night, case]``: one less
    than the nights with a value."""
    if prior is None:
        return 0
    return max(int(np.any(np.isfinite(prior[0]), axis=-1).sum()) - 1, 0)


def _shown(
    point: SeriesPoint, config: str, metric: str, per_case: np.ndarray
) -> tuple[float | None, float | None, float | None]:
    """The night's value: the stored mean and interval for a quality metric, else the
    operational figure (p95 seconds, failure share, geometric-mean tokens/s) of the
    per-case values its change is judged on, never the run's stored aggregate of that
    name (the leaderboard's arithmetic mean over generations: one impossible 50,262
    tokens/s made a night of ~17/s read 8,388/s, the reference drawn from it)."""
    stored = point.values.get(config, {}).get(metric)
    if metric not in OPERATIONAL and stored is not None and stored.mean is not None:
        return stored.mean, stored.low, stored.high
    finite = per_case[np.isfinite(per_case)]
    return (_figure(metric, finite), None, None) if finite.size else (None, None, None)


def _too_few(metric: str, cases: int) -> str:
    """Why a night of ``cases`` latencies is never judged on its p95 (``Night.too_few``),
    as the gate says it; empty where it can be."""
    if metric != "latency_p95" or not 0 < cases < LATENCY_MIN_N:
        return ""
    return f"fewer than {LATENCY_MIN_N} latencies ({cases}): a p95 needs {LATENCY_MIN_N} a run"


def _drawn(
    metric: str, measured: np.ndarray, shown: Sequence[tuple[float | None, ...]]
) -> list[float | None]:
    """Per night, what the sparkline draws: its value where it ran the cases of the
    stream's fullest night (the latest with the most), else its level on those cases,
    read paired as its change is judged: its figure on the cases both ran, less the
    fullest night's there, plus the fullest night's on all its cases (a ratio for p95
    latency and tokens/s). A newcomer's greedy config scored 0.417 on 12 cases and 0.667
    on the first 6 of them, the same outputs: the sparkline jumped ▁ to █ beside a change
    of +0.000. A night sharing no case with it keeps its value."""
    held = np.isfinite(measured)
    counts = held.sum(axis=1)
    fullest = len(counts) - 1 - int(np.argmax(counts[::-1]))
    full = held[fullest]
    ratio = metric in ("latency_p95", "tokens_per_s")
    out: list[float | None] = []
    for t, (value, *_) in enumerate(shown):
        both = held[t] & full
        if value is None or (held[t] == full).all() or not both.any():
            out.append(value)
            continue
        mine, theirs = _figure(metric, measured[t, both]), _figure(metric, measured[fullest, both])
        level = _figure(metric, measured[fullest, full])
        out.append(level * mine / theirs if ratio and theirs else level + mine - theirs)
    return out


def _figure(metric: str, per_case: np.ndarray) -> float:
    """The night's figure on ``per_case`` values (its operational figure: ``_shown``)."""
    if metric == "latency_p95":
        return float(np.quantile(per_case, 0.95))
    if metric == "tokens_per_s":
        return float(exp(per_case.mean()))
    return float(per_case.mean())


def _change(metric: str, theta: float) -> float:
    """A change in the metric's own units: log ratios as ratios − 1."""
    return exp(theta) - 1 if metric in ("latency_p95", "tokens_per_s") else float(theta)


def _run(
    points: Sequence[SeriesPoint],
    path: np.ndarray,
    alarms: np.ndarray,
    theta: np.ndarray,
    sign: float,
    metric: str,
) -> tuple[str | None, float | None]:
    """The first night of the evidence behind the last night (the CUSUM's current run,
    or the run that ended in tonight's alarm) and the mean change over it."""
    last = len(path) - 1
    if path[last] <= 0:
        return None, None
    start = last
    while start > 0 and path[start - 1] > 0 and not alarms[start - 1]:
        start -= 1
    run = theta[start : last + 1]
    run = run[np.isfinite(run)]
    by = _change(metric, sign * float(run.mean())) if run.size else None
    return points[start].experiment, by


def _flipped(grid: np.ndarray, higher: bool, limit: int = 20) -> list[int]:
    """Cases right (≥ 0.5) in every earlier night's mean and wrong tonight (the other way
    round where lower is better), at most ``limit``."""
    if grid.shape[0] < 2:
        return []
    with np.errstate(all="ignore"):
        before = np.nanmean(grid[:-1], axis=0)
    tonight = grid[-1]
    good_then = before >= 0.5 if higher else before < 0.5
    bad_now = tonight < 0.5 if higher else tonight >= 0.5
    return [int(i) for i in np.flatnonzero(good_then & bad_now & np.isfinite(tonight))[:limit]]
