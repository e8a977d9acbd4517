"""Change detection over a series: one CUSUM per stream (config × metric), with the
false-alarm rate of the whole series set, not of each test.

The method, per stream and per comparable segment (``_events``):

1. **Reference.** Every earlier night of the segment (at most ``window``; from the
   accepted baseline when that run alarmed or moved beyond noise), per case: a self-starting scheme
   (Hawkins 1987), so successive nights' changes are independent when nothing changes,
   where a fixed baseline's own noise would be shared by every night compared with it.
2. **Nightly statistic, paired.** ``θ_t`` is the night's change against the reference,
   in the metric's worse direction: for a mean metric (a score, failure, log latency,
   log tokens/s) the mean over shared cases of ``x_t,i − r_i`` with its standard error
   ``s_t = sd(d)/√n``, the paired comparison on shared cases (Miller, arXiv 2411.00640,
   §4); for p95 latency the log-ratio of the night's p95 to the mean log p95 of the
   reference nights.
3. **Nights differ by more than cases do.** A host's day, a judge's mood: a
   between-night variance ``τ²`` is estimated from the segment's earlier nights by the
   mean square successive difference (von Neumann 1941),
   ``τ² = max(floor², (mean(Δ²) − mean(s_Δ²))/2)``, and
   ``z_t = θ_t / √(s_t² + τ²(1 + 1/m)(1 + √(2/q)))`` (m: reference nights, q: the
   steps τ² rests on; the last factor, τ²'s relative standard error, keeps an
   underestimate of τ² from inflating a run of nights' z), mapped from a t distribution
   with Satterthwaite's degrees of freedom while τ² rests on few nights.
   The first ``learning`` full nights after a segment's first are shown, not judged
   (a partial night between them is skipped, not counted); a new model's segment
   counts the changes of the nights before its event too (``prior``).
4. **Accumulating evidence.** A one-sided CUSUM (Page 1954) per stream, allowance
   ``k`` (``k_latency`` for p95 latency, where a slower host is wanted on its first night):
   ``S_t = max(0, S_{t−1} + z_t − k)``, alarm when ``S_t ≥ h``, then ``S`` restarts. A
   small drop that lasts adds ``μ − k`` a night until it crosses ``h``; a large one
   crosses on its first night (``z ≥ h + k``).
5. **Error control over configs × metrics × nights.** The series promises at most
   ``false_alarms_per_100_nights`` false alarms per 100 nights in all. Each of its K
   streams gets an equal share: an in-control average run length
   ``ARL₀ = 100·K / F`` nights, and ``h`` solves Siegmund's approximation (1985, eq.
   2.58) ``ARL₀ = (e^{2kb} − 2kb − 1)/(2k²)``, ``b = h + 1.166``. What it really gives
   (estimated τ, binary scores) is measured by
   benchmarks/perf/trends_benchmark.py, not assumed.

Everything here is numpy over arrays whose last axis is the night, so the benchmark runs
the same code over thousands of simulated streams.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluation.errors import EvalError


class WatchError(EvalError):
    """Watch settings that leave the CUSUM no threshold: bad input."""


RULES = 14
"""The version of the watch's rules: this module's statistics, ``_trends``' choice of
streams and segments, ``_stream``'s reference nights and ``_accepted``'s baselines (2:
the same verdicts, each config named by its short label, as `show` names it: a kept
verdict held the full one; 3: a tokens/s impossible for its request's latency is read
as none, a case's tokens/s counts at most ``_frames.TOKENS_SPREAD`` from its night's
median: a night's verdict kept with one such value in it is computed again; 4: a
label whose config changed, a template edited under its name, is one stream across the
change, judged there, where it restarted; 5: once a config changed under the label
alarms or reaches "watch", its nights leave the reference, as an alarmed night does; 6:
a speed alarm the machine's recorded load explains is set down to "watch",
``_machine_load``; 7: a model event over the same weights' digest, a server upgrade,
restarts nothing, and the first run after a new model's weights is judged against the
runs before, ``_across``; its digest flapping A, B, A, B: each B judged against A's runs;
8: a run that said no digest between digest A and B hides no event, ``_events``; 9: a
new model's stream learns its spread with the changes of the runs before its event, and
judges from its second run where those had learned; its first run, where they had not,
is judged by the run that first judges the new model's stream, ``_across``; 10: a run
accepted back at the level before an accepted drop goes back to it, the nights of the
level given up out of the reference, ``_accepted._back``; 11: and their evidence, the
CUSUM starting afresh after them, as after an alarm; 12: a new model's first run
judged against the runs up to the last that said the old one, ``_across``; 13: a
learning night that would have alarmed alone against the other nights' spread leaves
the later nights' reference and spread, as an alarmed night does, ``_alone``; 14: the
one config of a model in a run and in the run before, under other labels (a value its
label shows edited: n=32 -> n=3), is one stream, judged across the change as a config
changed under its label, ``_series.lone_config_pairs``).
A verdict kept under another version (``_verdict``) is computed again.
tests/evaluation/series/test_watch_rules.py pins the verdicts on fixed series to this
version: a change that moves any of them fails it until RULES is raised and the new
verdicts are pinned."""

LATENCY_FLOOR = 0.05  # log units: hosts' days differ by a few percent at least
SIEGMUND_SHIFT = 1.166
ESCALATE_SHARE = 0.5
"""A night watched on the calibrated level runs the full suite when a quality stream's
evidence reaches this share of its threshold (the monitor's "watch" state) or it alarms:
measured in benchmarks/perf/itembank_benchmark.py (docs/trends.md)."""


@dataclass(frozen=True)
class WatchSettings:
    """How the watch trades false alarms for speed (docs/trends.md)."""

    false_alarms_per_100_nights: float = 2.0
    """For the whole series (all its configs × metrics), in the long run."""
    k: float = 0.75
    """CUSUM allowance in z units: drops of about 2k z a night are caught fastest."""
    k_latency: float = 1.5
    """The allowance for p95 latency: a slower host is a large change, wanted on its first
    night (z ≥ h + k), and a larger k lowers h + k at the same run length."""
    window: int = 30
    """At most this many earlier nights of the segment form the reference."""
    learning: int = 3
    """Night-to-night changes seen before a night is judged: the first ``learning``
    nights of a segment after its first teach the watch how much nights differ."""

    def __post_init__(self) -> None:
        if not 0 < self.false_alarms_per_100_nights < 100:
            raise ValueError(
                "false_alarms_per_100_nights must lie in (0, 100), got "
                f"{self.false_alarms_per_100_nights}"
            )
        if self.k <= 0 or self.k_latency <= 0:
            raise ValueError(f"k and k_latency must be positive, got {self.k}, {self.k_latency}")
        if self.learning < 2:
            raise ValueError(f"learning must be at least 2, got {self.learning}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}")

    def threshold(self, streams: int, k: float | None = None) -> float:
        """h for a series of ``streams`` watched streams, for allowance ``k`` (default
        ``self.k``): every stream gets the same in-control run length."""
        arl0 = 100.0 * max(streams, 1) / self.false_alarms_per_100_nights
        return cusum_threshold(arl0, self.k if k is None else k)

    def refuse_no_threshold(self, streams: int) -> None:
        """WatchError when an allowance leaves a series of ``streams`` streams no
        threshold: where the CUSUM's run length at h = 0 already exceeds the promised
        one, h ≤ 0 and the watch no longer means what it promises. The advice is what
        works: the false-alarm rate below which both allowances have a threshold, and
        a smaller ``--k`` only where the quality allowance alone is too large (the
        latency's is fixed)."""
        arl0 = 100.0 * max(streams, 1) / self.false_alarms_per_100_nights
        quality, latency = (siegmund_arl(0.0, k) >= arl0 for k in (self.k, self.k_latency))
        if not (quality or latency):
            return
        # h > 0 needs siegmund_arl(0, k) < 100 · streams / F for both k
        most = min(100.0 * max(streams, 1) / siegmund_arl(0.0, k) for k in (self.k, self.k_latency))
        fewer = f"--false-alarms of at most {_at_most(most)}"
        promise = (
            f"{self.false_alarms_per_100_nights:g} false alarms per 100 nights over "
            f"{streams} stream(s)"
        )
        if latency:
            raise WatchError(
                f"{promise} leaves the p95 latency's CUSUM (its allowance k = "
                f"{self.k_latency:g}, fixed) no threshold (h ≤ 0): use {fewer}"
            )
        low, high = 0.0, self.k
        for _ in range(40):
            mid = (low + high) / 2
            low, high = (mid, high) if siegmund_arl(0.0, mid) < arl0 else (low, mid)
        raise WatchError(
            f"CUSUM k = {self.k:g} with {promise} leaves the watch no threshold (h ≤ 0): "
            f"use a k of at most {math.floor(low * 100) / 100:g} (--k), or {fewer}"
        )

    def allowance(self, metric: str) -> float:
        """The CUSUM allowance of a stream of ``metric``."""
        return self.k_latency if metric == "latency_p95" else self.k


def _at_most(bound: float) -> str:
    """``bound`` rounded down to 3 significant figures, strictly below it: the advice
    "at most N" holds, N itself works (the advice said "below N" and N worked)."""
    step = 10.0 ** (math.floor(math.log10(bound)) - 2)
    below = (math.ceil(bound / step) - 1) * step
    return f"{below:.3g}"


def beyond_noise(
    evidence: np.ndarray | float,
    threshold: float,
    alarm: np.ndarray | bool = False,
    moved: np.ndarray | bool = False,
    share: float = ESCALATE_SHARE,
) -> np.ndarray | bool:
    """Whether a night moved beyond noise, as the nightly run's escalation from the
    calibrated level to the full suite reads it: an alarm, evidence at ``share`` of the
    threshold or more, or a learning night whose change excludes none. Element-wise."""
    return np.logical_or(np.logical_or(alarm, moved), np.asarray(evidence) >= share * threshold)


def siegmund_arl(h: float, k: float) -> float:
    """In-control average run length of a one-sided Gaussian CUSUM (Siegmund 1985)."""
    a = 2 * k * (h + SIEGMUND_SHIFT)
    return (math.exp(a) - a - 1) / (2 * k * k)


def cusum_threshold(arl0: float, k: float) -> float:
    """The h whose in-control average run length is ``arl0`` nights (bisection)."""
    low, high = 0.0, 1.0
    while siegmund_arl(high, k) < arl0:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if siegmund_arl(mid, k) < arl0 else (low, mid)
    return high


def between_night_var(
    steps: np.ndarray, step_var: np.ndarray, *, min_steps: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """The variance between nights beyond their within-night noise, at each night, from
    the nights before it, and how many steps it rests on: ``steps[..., t]`` is night
    t's change from night t−1 (NaN where there is none), ``step_var`` its within-night
    variance (0: estimate the nights' whole variance). Entry t uses steps before t only
    (never the night being judged); NaN with fewer than ``min_steps``. The mean square
    successive difference (von Neumann 1941): ``max(0, (mean(Δ²) − mean(s_Δ²))/2)``."""
    out = np.full(steps.shape, np.nan)
    counts = np.zeros(steps.shape)
    squares = np.nan_to_num(steps**2)
    present = ~np.isnan(steps)
    noise = np.nan_to_num(step_var)
    for t in range(min_steps + 1, steps.shape[-1]):
        count = np.sum(present[..., 1:t], axis=-1)
        with np.errstate(all="ignore"):
            raw = np.sum(squares[..., 1:t], axis=-1) / count
            within = np.sum(np.where(present, noise, 0)[..., 1:t], axis=-1) / count
        out[..., t] = np.where(count >= min_steps, np.maximum((raw - within) / 2, 0.0), np.nan)
        counts[..., t] = count
    return out, counts


def z_scores(
    theta: np.ndarray,
    se2: np.ndarray,
    tau2: np.ndarray,
    reference_nights: np.ndarray,
    steps: np.ndarray,
) -> np.ndarray:
    """The night's standardized change in the worse direction (NaN where not judged).
    The reference's own day effects add τ²/m. τ² rests on few nights early on, so the
    ratio is a t statistic (Satterthwaite's degrees of freedom: the steps behind τ²,
    scaled by τ²'s share of the variance) mapped to the normal scale."""
    from scipy.special import ndtri, stdtr

    with np.errstate(all="ignore"):
        # τ² is an estimate: where it happens to fall short, every night's z is too large
        # for a while and the CUSUM sums them. Its relative standard error, √(2/steps),
        # added to it keeps the promise where nights differ (benchmarks/perf/
        # trends_benchmark.py, drifting world); τ² ≈ 0 where they do not, so it costs
        # nothing there.
        between = (
            tau2
            * (1 + 1 / np.maximum(reference_nights, 1))
            * (1 + np.sqrt(2 / np.maximum(steps, 1)))
        )
        total = se2 + between
        t = theta / np.sqrt(total)
        df = np.where(between > 0, steps * (total / np.where(between > 0, between, 1)) ** 2, np.inf)
        df = np.clip(np.nan_to_num(df, nan=np.inf), 1, 1e6)
        z = np.where(df >= 1e6, t, ndtri(np.clip(stdtr(df, t), 1e-300, 1 - 1e-16)))
    unchanged = (theta == 0) & (total == 0)  # nothing moved, nothing varies: no evidence
    return np.where(unchanged, 0.0, np.where(np.isnan(t), np.nan, z))


def cusum(
    z: np.ndarray, k: float, h: float, restart: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The CUSUM path and its alarms along the last axis; NaN nights leave S unchanged;
    S restarts at 0 after an alarm, and after a night of ``restart`` (same shape)."""
    s = np.zeros(z.shape[:-1])
    path = np.zeros(z.shape)
    alarms = np.zeros(z.shape, dtype=bool)
    for t in range(z.shape[-1]):
        step = z[..., t]
        s = np.where(np.isnan(step), s, np.maximum(0.0, s + np.nan_to_num(step) - k))
        fired = s >= h
        alarms[..., t] = fired
        path[..., t] = s
        s = np.where(fired if restart is None else fired | restart[..., t], 0.0, s)
    return path, alarms


def paired_change(night: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and squared standard error of ``night − reference`` over the cases both
    have (last axis: cases); fewer than two shared cases give NaN."""
    d = night - reference
    n = np.sum(~np.isnan(d), axis=-1)
    with np.errstate(all="ignore"), _quiet():
        mean = np.nanmean(d, axis=-1)
        var = np.nanvar(d, axis=-1, ddof=1) / n
    bad = n < 2
    return np.where(bad, np.nan, mean), np.where(bad, np.nan, var)


LATENCY_MIN_N = 10  # the fewest latencies whose p95 gets an interval


def log_quantile(values: np.ndarray, q: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """log of the q-quantile over the last axis (NaN ignored) and its squared standard
    error from the order statistics that bound it (a 95% distribution-free interval of
    ranks n·q ± 1.96·√(n·q(1−q)), its width / 3.92)."""
    ordered = np.sort(np.log(values), axis=-1)  # NaN sort last
    n = np.sum(~np.isnan(ordered), axis=-1)
    with np.errstate(all="ignore"), _quiet():
        point = np.nanquantile(ordered, q, axis=-1)
    half = 1.96 * np.sqrt(n * q * (1 - q))
    lo = np.clip(np.floor(n * q - half).astype(int) - 1, 0, None)
    hi = np.clip(np.ceil(n * q + half).astype(int) - 1, 0, np.maximum(n - 1, 0))
    take = np.take_along_axis
    width = take(ordered, hi[..., None], -1)[..., 0] - take(ordered, lo[..., None], -1)[..., 0]
    se2 = (width / 3.92) ** 2
    bad = n < LATENCY_MIN_N
    return np.where(bad, np.nan, point), np.where(bad, np.nan, se2)


class _quiet:
    """numpy's "Mean of empty slice" and "All-NaN slice" warnings: expected here."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)


def reference_counts(nights: int, window: int) -> np.ndarray:
    """How many reference nights each night is compared with: all before it, at most
    ``window``."""
    return np.minimum(np.arange(nights), window)


def _window_means(values: np.ndarray, window: int, axis: int) -> np.ndarray:
    """Mean over the ``window`` entries before each index along ``axis`` (NaN ignored;
    NaN where none)."""
    values = np.moveaxis(values, axis, -1)
    zero = np.zeros((*values.shape[:-1], 1))
    sums = np.concatenate([zero, np.cumsum(np.nan_to_num(values), -1)], -1)
    counts = np.concatenate([zero, np.cumsum(~np.isnan(values), -1)], -1)
    t = np.arange(values.shape[-1])
    start = np.maximum(t - window, 0)
    with np.errstate(all="ignore"):
        mean = (sums[..., t] - sums[..., start]) / (counts[..., t] - counts[..., start])
    return np.moveaxis(mean, -1, axis)


def _last_held(held: np.ndarray) -> np.ndarray:
    """For each night (last axis), the index of the last night before it with data, −1
    where none: a night's step is taken from it, so a partial night between two full
    ones (no data here) costs one step, not two, and learning lasts ``learning`` full
    nights as documented."""
    nights = held.shape[-1]
    index = np.where(held, np.arange(nights), -1)
    last = np.maximum.accumulate(index, axis=-1)
    return np.concatenate([np.full_like(last[..., :1], -1), last[..., :-1]], -1)


def mean_stream_z(
    values: np.ndarray,
    *,
    higher_is_better: bool,
    window: int,
    learning: int = 3,
    floor: float = 0.0,
    excluded: np.ndarray | None = None,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For per-case values ``[..., night, case]`` (NaN: missing): each night's change
    against the per-case means of the nights before it (at most ``window``), in the
    worse direction (θ), its squared standard error, z, and each learning night's z
    against the other nights' spread (:func:`_alone`; NaN elsewhere). Night 0 opens the
    reference and is not judged (NaN). ``excluded`` ``[..., night]``: nights judged
    but kept out of the later nights' reference and spread (an alarm's nights:
    :func:`watch_stream`). A change below the stream's resolution (``RESOLUTION`` of
    its level, float rounding) is no change, and no night's error is below it.
    ``prior`` ``[..., night, case]``: other nights of the stream, never a reference,
    whose successive changes teach τ² too (:func:`_with_prior`)."""
    excluded = np.zeros(values.shape[:-1], dtype=bool) if excluded is None else excluded
    held = np.any(~np.isnan(values), axis=-1)  # a night with data (a partial one has none)
    usable = held & ~excluded
    m = _window_means(usable.astype(float), window, axis=-1) * reference_counts(
        values.shape[-2], window
    )  # the reference nights each night is compared with
    reference = _window_means(np.where(excluded[..., None], np.nan, values), window, axis=-2)
    change, se2 = paired_change(values, reference)
    resolution = _resolution(values)[..., None]
    change = np.where(np.abs(change) < resolution, 0.0, change)
    se2 = np.maximum(se2, resolution**2)
    theta = -change if higher_is_better else change
    carried = None if prior is None else _steps(prior, paired=True)

    def spread(out: np.ndarray, nights: int, min_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """τ² and its steps at each of the first ``nights`` nights, ``out`` left out."""
        step, step_var = _steps(values[..., :nights, :], out[..., :nights], paired=True)
        if carried is not None:
            step, step_var = _with_prior(carried[0], step), _with_prior(carried[1], step_var)
        tau2, steps = between_night_var(step, step_var, min_steps=min_steps)
        start = 0 if prior is None else prior.shape[-2]
        return np.maximum(tau2[..., start:], floor * floor), steps[..., start:]

    tau2, steps = spread(excluded, values.shape[-2], learning)
    m = np.nan_to_num(m)
    z = z_scores(theta, se2, tau2, m, steps)
    return theta, se2, z, _alone(theta, se2, m, z, excluded, spread)


def _steps(
    values: np.ndarray, out: np.ndarray | None = None, *, paired: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each night's step from the last earlier night with data, ``out`` left out (NaN
    there; the next night steps over it), and the step's within-night variance:
    per-case values ``[..., night, case]`` paired on shared cases (``paired``), else one
    figure a night ``[..., night]`` (variance 0: its whole variance is estimated)."""
    held = np.any(~np.isnan(values), axis=-1) if paired else ~np.isnan(values)
    out = np.zeros(held.shape, dtype=bool) if out is None else out
    before = _last_held(held & ~out)
    if paired:
        previous = np.take_along_axis(values, np.maximum(before, 0)[..., None], axis=-2)
        step, step_var = paired_change(values, np.where((before >= 0)[..., None], previous, np.nan))
    else:
        previous = np.take_along_axis(values, np.maximum(before, 0), axis=-1)
        step = values - np.where(before >= 0, previous, np.nan)
        step_var = np.zeros_like(step)
    return np.where(out, np.nan, step), step_var  # a step into a night left out is none


def _alone(
    theta: np.ndarray,
    se2: np.ndarray,
    m: np.ndarray,
    z: np.ndarray,
    excluded: np.ndarray,
    spread: Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Each learning night's z (a change, no spread yet: NaN z) against the other
    nights' spread, once the stream has learned: the spread that judges the stream's
    first judged night after it, from the nights before that one, its own steps left
    out (one fewer); NaN for every other night. :func:`watch_stream` takes one that
    would have alarmed alone out of the later nights' reference and spread: kept in,
    its steps into and out of a collapse widened every later night's interval, and the
    same collapse three nights later read p 0.13 (ncwatch-4). Causal: it rests on the
    nights before the first judged one, and decides only whether that one is judged."""
    nights = z.shape[-1]
    learning = np.isfinite(theta) & np.isnan(z) & ~excluded
    judged = np.where(np.isfinite(z), np.arange(nights), nights)
    first = np.minimum.accumulate(judged[..., ::-1], axis=-1)[..., ::-1]  # at or after
    after = np.concatenate([first[..., 1:], np.full_like(first[..., :1], nights)], -1)
    learning &= after < nights
    alone = np.full(z.shape, np.nan)
    for j in np.flatnonzero(learning.reshape(-1, nights).any(axis=0)):
        out = excluded.copy()
        out[..., j] = True
        at = np.where(learning[..., j], after[..., j], j + 1)[..., None]
        tau2, steps = spread(out, int(at.max()) + 1, 1)
        here = np.take_along_axis(tau2, at, -1)[..., 0], np.take_along_axis(steps, at, -1)[..., 0]
        z_j = z_scores(theta[..., j], se2[..., j], here[0], m[..., j], here[1])
        alone[..., j] = np.where(learning[..., j], z_j, np.nan)
    return alone


def _with_prior(prior: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """A stream's night-to-night steps ``[..., night]`` after those of ``prior`` nights
    (the runs before its model's event: their host's and judge's days are the new
    model's too), for :func:`between_night_var`: a new model's stream judges from its
    second run with the spread the runs before had learned, where restarting learned it
    afresh from the new model's runs alone (young segments, τ² on few steps: a new model
    every 25 nights in a drifting world raised 2.9 false alarms per 100 nights,
    benchmarks/perf/trends_benchmark.py). The step across the event is none (the
    stream's first night has no step)."""
    return np.concatenate([np.broadcast_to(prior, (*steps.shape[:-1], prior.shape[-1])), steps], -1)


RESOLUTION = 1e-6
"""A stream's resolution, as a share of its level (at least of 1): a change below it is
float rounding (a deterministic stream's tokens/s differ by ~1e-9 between identical
nights), not evidence."""


def _resolution(values: np.ndarray) -> np.ndarray:
    """Per stream (all axes but the last two): ``RESOLUTION`` × its mean absolute value,
    that at least 1."""
    with np.errstate(all="ignore"), _quiet():
        level = np.nanmean(np.abs(values), axis=(-2, -1))
    return RESOLUTION * np.maximum(np.nan_to_num(level), 1.0)


def p95_stream_z(
    latencies: np.ndarray,
    *,
    window: int,
    learning: int = 3,
    floor: float = 0.0,
    excluded: np.ndarray | None = None,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`mean_stream_z` for the p95 of latencies ``[..., night, case]``: θ is
    the night's log p95 minus the mean log p95 of the nights before it; higher is
    worse. The p95 of a fixed set of cases varies less between nights than a sample's
    quantile would, so its whole night-to-night variance (case noise and day effects,
    at least ``floor``²) is estimated from the steps, as τ² is for a mean."""
    excluded = np.zeros(latencies.shape[:-1], dtype=bool) if excluded is None else excluded
    point, _ = log_quantile(latencies)
    usable = ~np.isnan(point) & ~excluded
    m = np.nan_to_num(
        _window_means(usable.astype(float), window, axis=-1)
        * reference_counts(latencies.shape[-2], window)
    )
    theta = point - _window_means(np.where(excluded, np.nan, point), window, axis=-1)
    carried = None if prior is None else _steps(log_quantile(prior)[0], paired=False)[0]

    def spread(out: np.ndarray, nights: int, min_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The nights' variance (case noise and day effects) and its steps at each of
        the first ``nights`` nights, ``out`` left out."""
        step, _ = _steps(point[..., :nights], out[..., :nights], paired=False)
        if carried is not None:
            step = _with_prior(carried, step)
        night_var, steps = between_night_var(step, np.zeros_like(step), min_steps=min_steps)
        start = 0 if prior is None else prior.shape[-2]
        return np.maximum(night_var[..., start:], floor * floor), steps[..., start:]

    night_var, steps = spread(excluded, latencies.shape[-2], learning)
    zero = np.zeros_like(theta)
    z = z_scores(theta, zero, night_var, m, steps)
    return (
        theta,
        night_var * (1 + 1 / np.maximum(m, 1)),
        z,
        _alone(theta, zero, m, z, excluded, spread),
    )


def watch_stream(
    z_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    nights: tuple[int, ...],
    k: float,
    h: float,
    changed: np.ndarray | None = None,
    left_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """θ, its variance, z, the CUSUM path, its alarms and the nights kept out of the
    reference, of streams of shape ``nights`` (``[..., night]``), where
    ``z_of(excluded)`` is :func:`mean_stream_z` or :func:`p95_stream_z` with those
    nights kept out of the reference. An alarmed night is a known change: it leaves the
    later nights' reference and their spread (τ²), so the nights after it are compared
    with the level before it. Kept in, one collapse would widen every later night's
    error and hide the same collapse a second time; a drop that persists alarms again
    (accepting a run at that level takes it: ``_accepted._from_accepted``). Only the
    alarmed night leaves, not the nights its evidence built over: on a null series those
    are ordinary nights a little on the worse side, and taking them out too narrows τ²
    until false alarms feed more (benchmarks/perf/trends_benchmark.py, drifting world:
    1.06 → 1.84 false alarms per 100 nights; the alarmed night alone: 1.14). A night the
    stream learned from that would have alarmed alone (its z against the other nights'
    spread, once the stream has learned, at least h + k: :func:`_alone`) leaves them as
    an alarmed night does: a collapse there no longer widens the spread that judges its
    repeat (benchmarks/perf/trends_benchmark.py, ``collapse``); the stream learns one
    night longer, from the night it would have judged, which is never taken out so: a
    drop that lasts from a learning night on took out each night after it, and the
    stream never learned. ``changed`` (``[..., night]``, 0: the stream's first config):
    the nights of a config changed under the stream's label (a template edited),
    numbered per config. Once one of a config's nights alarms or its evidence reaches
    ``ESCALATE_SHARE`` of h (the "watch" state), the change is known to have moved the
    level: all that config's nights leave the reference, so each night after the change
    is compared with the level before it and a drop that persists reads the same every
    night (kept in, the edit's first night made the second read weaker and less
    certain). Causal: an alarm or a moved config changes only the nights after it, so
    each pass settles the earliest one not yet taken out, per stream. ``left_out``
    (``[..., night]``): nights kept out from the start (a level given up:
    ``_accepted._back``), whose evidence the CUSUM drops after them, as after an alarm:
    kept, a one-night drop accepted and then given up (evidence 3.4, h 4.25) left 2.7 to
    the run back at the old level, past half of h: beyond noise, its stream restarted."""
    excluded = np.zeros(nights, dtype=bool) if left_out is None else left_out.copy()
    learned_from = None  # the first pass's learning nights: none learns in another's place
    while True:
        theta, var, z, alone = z_of(excluded)
        learned_from = np.isfinite(alone) if learned_from is None else learned_from
        path, alarms = cusum(z, k, h, left_out)
        fresh = (alarms | (learned_from & (alone >= h + k))) & ~excluded
        moved = np.zeros(nights, dtype=bool)
        if changed is not None:
            moved = (changed > 0) & ~excluded & (alarms | (path >= ESCALATE_SHARE * h))
        if not (fresh.any() or moved.any()):
            return theta, var, z, path, alarms, excluded
        for index in np.ndindex(nights[:-1]):
            first_alarm = np.flatnonzero(fresh[index])
            first_moved = np.flatnonzero(moved[index])
            if first_moved.size and (not first_alarm.size or first_moved[0] < first_alarm[0]):
                excluded[index] |= changed[index] == changed[index][first_moved[0]]
            elif first_alarm.size:
                excluded[index][first_alarm[0]] = True
