"""The watch over a series, measured: false alarms when nothing changes, nights to catch
a change, beside the present rule (Holm per night against the accepted baseline).

A direct simulation of the simulated backend's data model (docs/simulated-backend.md),
vectorised over repetitions × configs × nights × cases:

- accuracy: binary, correct when ``√ρ·D_i + √(1−ρ)·E < Φ⁻¹(q)`` (ρ = 0.5: a case's
  difficulty D_i is shared by every config and night, E is fresh each night);
- judge score in [0, 1]: ``0.6 + 0.15·A_i + 0.1·E + J_t`` clipped, J_t a judge's drift
  on night t (drift world only);
- latency: ``base_c · e^{0.3·B_i} · ε · H_t`` with ε log-normal of σ 0.15 (the backend's
  LATENCY_SIGMA), H_t the host's day effect (drift world only), watched as p95.

Worlds: ``steady`` (nights differ only by case noise) and ``drifting`` (a host's latency
day effect, log-sd 0.10, and a judge's daily drift, sd 0.02). Scenarios: ``null`` (no
change: false alarms; the ``gate`` rows' "nights w/ false" is evalflow gate's false-fail
rate per comparison of night t with night 0), ``drop`` (one config's accuracy 5 points
lower from night 20 on: nights to catch it; ``drop10``: 10 points, not run by default),
``latency`` (one config's latencies 2× from night 20 on), ``repeat`` (one config's
accuracy 30 points lower on night 20 only, and again on night 25: is the second
caught as the first was? Its columns are of night 25; not run by default),
``collapse`` (the same on night 2, a learning night, and again on night 5, judged:
does the first blind the watch to the second? Its columns are of night 5; not run by
default); model events
(not run by default): ``upgrade`` (no change; every config's server upgraded on nights
25, 50 and 75, the same weights: the stream goes on across it), ``requant`` (no change;
every config's model a new digest on those nights, the same quality: the watch restarts,
the first run after judged against the runs before), ``worse`` / ``worse25`` (every
config's model a new digest on night 20, TARGET's accuracy 10 / 25 points lower from
there: caught on the event's night, judged across it?), ``early1`` / ``early2`` /
``early3`` (every config's model a new digest on night 1 / 2 / 3, TARGET's accuracy 25
points lower from there: the runs before have not learned; caught by the night that
first judges the new model's streams?), ``earlyeq`` (a new digest on night 2 of the same
quality: false alarms). ``--restart-events``: the rule before, every model event
restarting the watch and its first run not judged; ``--uncarried``: the rule before, a
new model's streams learning their spread afresh and a first run whose runs before had
not learned never judged. ``early``:
false alarms per 100 nights over the watch's first 10 judged nights (4-13 at the default
``--learning``), where τ² rests on few steps; "false/100 nights ± SE" is over all of them.

Run: ``python benchmarks/perf/trends_benchmark.py`` (numpy and scipy only; 20
repetitions of two worlds took 8 s on 2 cores, the default run 779 s on 2 cores shared
under a load of ~16);
``--reps``, ``--nights`` for other sizes, ``--seed`` for fresh draws (a draw's figures carry
their standard error over repetitions: at 60 repetitions about ±0.3 false alarms per 100
nights in the drifting world). Figures: docs/trends.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluation.series._watch import (
    LATENCY_FLOOR,
    WatchSettings,
    log_quantile,
    mean_stream_z,
    p95_stream_z,
    watch_stream,
)

CONFIGS, METRICS, CASES = 10, 3, 150
CHANGE_NIGHT = 20
DROPS = {"drop": 0.05, "drop10": 0.10}  # points of accuracy lost by TARGET
COLLAPSE = 0.30  # TARGET's accuracy lost on two nights only, the nights of REPEATS
REPEATS = {"repeat": (CHANGE_NIGHT, CHANGE_NIGHT + 5), "collapse": (2, 5)}  # 2: learning
EARLY = {"early1": (1,), "early2": (2,), "early3": (3,), "earlyeq": (2,)}
EVENTS = {
    "upgrade": (25, 50, 75),
    "requant": (25, 50, 75),
    "worse": (20,),
    "worse25": (20,),
    **EARLY,
}
SAME_WEIGHTS = ("upgrade",)  # events over the same weights' digest: nothing restarts
WORSE = {"worse": 0.10, "worse25": 0.25, "early1": 0.25, "early2": 0.25, "early3": 0.25}
QUALITY = np.linspace(0.55, 0.85, CONFIGS)  # per config
TARGET = 8  # the config that changes: quality 0.82, near sim-large:8b's 0.80 on qa
LATENCY_SIGMA = 0.15
# latency day log-sd, judge drift sd, ρ: the share of a case's correctness fixed across
# nights (0.5: the simulated backend's DIFFICULTY_CORRELATION, a fresh draw every night;
# 0.9: a model at low temperature that mostly repeats itself)
WORLDS = {
    "steady": (0.0, 0.0, 0.5),
    "drifting": (0.10, 0.02, 0.5),
    "repeatable": (0.0, 0.0, 0.9),
}


def simulate(
    rng: np.random.Generator, reps: int, nights: int, world: str, scenario: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """accuracy, judge and latency arrays ``[rep, config, night, case]``."""
    day_sd, judge_sd, rho = WORLDS[world]
    shape = (reps, CONFIGS, nights, CASES)
    quality = QUALITY[None, :, None, None] * np.ones((*shape[:3], 1))
    if scenario in DROPS:
        quality[:, TARGET, CHANGE_NIGHT:] -= DROPS[scenario]
    if scenario in WORSE:
        quality[:, TARGET, EVENTS[scenario][0] :] -= WORSE[scenario]
    if scenario in REPEATS:  # one bad night, back to normal, the same bad night again
        quality[:, TARGET, list(REPEATS[scenario])] -= COLLAPSE
    difficulty = rng.standard_normal((reps, 1, 1, CASES))
    latent = np.sqrt(rho) * difficulty + np.sqrt(1 - rho) * rng.standard_normal(shape)
    accuracy = (latent < stats.norm.ppf(quality)).astype(float)
    drift = judge_sd * rng.standard_normal((reps, 1, nights, 1))
    ability = rng.standard_normal((reps, 1, 1, CASES))
    judge = np.clip(0.6 + 0.15 * ability + 0.1 * rng.standard_normal(shape) + drift, 0, 1)
    base = np.linspace(1.0, 5.0, CONFIGS)[None, :, None, None]
    length = np.exp(0.3 * rng.standard_normal((reps, 1, 1, CASES)))
    noise = np.exp(LATENCY_SIGMA * rng.standard_normal(shape) - LATENCY_SIGMA**2 / 2)
    day = np.exp(day_sd * rng.standard_normal((reps, 1, nights, 1)))
    latency = base * length * noise * day
    if scenario == "latency":
        latency[:, TARGET, CHANGE_NIGHT:] *= 2.0
    return accuracy, judge, latency


def watch_alarms(
    accuracy: np.ndarray,
    judge: np.ndarray,
    latency: np.ndarray,
    settings: WatchSettings,
    restarts: tuple[int, ...] = (),
    across: bool = True,
    carried: bool = True,
) -> np.ndarray:
    """The watch's alarms ``[rep, config, metric, night]``, as ``evalflow trends``
    computes them (``watch_stream``: an alarm's nights leave the later reference),
    restarted on the nights of ``restarts`` (every config's model changed there: each
    segment watched on its own); ``across``: each restart's first night judged as the
    next night of the segment before (``evaluation/series/_across``), else not judged
    (the rule before M9). ``carried``: a segment's spread learned from the segment
    before's night-to-night changes too (``_watch._with_prior``: judged from its second
    night where those had learned), and a first night whose segment before had not
    learned judged by the night that first judges the new segment, its alarm raised
    there; else (the rule before) each segment learns afresh and such a night is never
    judged."""
    if not restarts:
        return _watch_alarms(accuracy, judge, latency, settings)
    data = (accuracy, judge, latency)
    bounds = [0, *restarts, accuracy.shape[2]]
    alarms = np.zeros((*accuracy.shape[:2], METRICS, accuracy.shape[2]), dtype=bool)
    for before, start, end in zip(bounds, bounds[1:], bounds[2:], strict=False):
        if before == 0:  # the first segment
            alarms[..., :start] = _watch_alarms(*(a[:, :, :start] for a in data), settings)
        prior = None
        if carried:  # the segment before's nights, its alarmed ones left out
            out = alarms[..., before:start]
            prior = tuple(
                np.where(out[:, :, m, :, None], np.nan, a[:, :, before:start])
                for m, a in enumerate(data)
            )
        alarms[..., start:end] = _watch_alarms(*(a[:, :, start:end] for a in data), settings, prior)
        if across:  # the first night after the event, as the old segment's next
            alarms[..., start] = _watch_alarms(
                *(a[:, :, before : start + 1] for a in data), settings
            )[..., -1]
            steps = start - before - 1  # the old segment's own: it judged none
            first = start + settings.learning - steps + 1  # the new one's first judged
            if carried and steps < settings.learning and first < end:
                late = _watch_alarms(
                    *(a[:, :, before : start + 1] for a in data),
                    settings,
                    tuple(a[:, :, start:first] for a in data),
                )[..., -1]
                alarms[..., first] |= late  # raised by the night that judged it
    return alarms


def _watch_alarms(
    accuracy: np.ndarray,
    judge: np.ndarray,
    latency: np.ndarray,
    settings: WatchSettings,
    prior: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``watch_alarms`` of one segment; ``prior``: nights whose changes teach its
    spread too (accuracy, judge, latency)."""
    m, n, streams = settings.window, settings.learning, CONFIGS * METRICS
    h = settings.threshold(streams)
    before = (None, None, None) if prior is None else prior

    def quality(values: np.ndarray, earlier: np.ndarray | None) -> np.ndarray:
        return watch_stream(
            lambda out: mean_stream_z(
                values, higher_is_better=True, window=m, learning=n, excluded=out, prior=earlier
            ),
            values.shape[:-1],
            settings.k,
            h,
        )[4]

    k = settings.allowance("latency_p95")
    slow = watch_stream(
        lambda out: p95_stream_z(
            latency, window=m, learning=n, floor=LATENCY_FLOOR, excluded=out, prior=before[2]
        ),
        latency.shape[:-1],
        k,
        settings.threshold(streams, k),
    )[4]
    return np.stack([quality(accuracy, before[0]), quality(judge, before[1]), slow], axis=2)


def present_rule_alarms(
    accuracy: np.ndarray,
    judge: np.ndarray,
    latency: np.ndarray,
    alpha: float = 0.05,
    gate: bool = False,
) -> np.ndarray:
    """evaluation/compare/_regression.py per night against night 0 (the accepted
    baseline): exact McNemar (accuracy) and paired t (judge), Holm over every config ×
    quality metric, worse direction; p95 latency above 2× the baseline's. ``gate``:
    ``evalflow gate`` instead (evaluation/series/_gate.py): the p95's log ratio tested
    (one-sided, order-statistic errors and a 5% day spread) in the same Holm family."""
    reps, configs, nights, _ = accuracy.shape
    base_acc, base_judge = accuracy[:, :, :1], judge[:, :, :1]
    b = np.sum((accuracy == 0) & (base_acc == 1), axis=-1)  # right before, wrong now
    c = np.sum((accuracy == 1) & (base_acc == 0), axis=-1)
    p_acc = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    p_acc = np.where(b + c == 0, 1.0, p_acc)
    d = judge - base_judge
    with np.errstate(all="ignore"):
        t = d.mean(-1) / (d.std(-1, ddof=1) / np.sqrt(d.shape[-1]))
    p_judge = np.nan_to_num(2 * stats.t.sf(np.abs(t), d.shape[-1] - 1), nan=1.0)
    worse = np.stack([b > c, d.mean(-1) < 0], axis=2)  # [rep, config, metric, night]
    p = np.stack([p_acc, p_judge], axis=2)
    if gate:
        point, se2 = log_quantile(latency)
        theta = point - point[..., :1]
        z = theta / np.sqrt(se2 + se2[..., :1] + 2 * LATENCY_FLOOR**2)
        worse = np.concatenate([worse, (theta > 0)[:, :, None]], axis=2)
        p = np.concatenate([p, stats.norm.sf(z)[:, :, None]], axis=2)
    flat = np.moveaxis(p, -1, 1).reshape(reps, nights, -1)  # Holm over config × metric
    order = np.argsort(flat, axis=-1)
    ranked = np.take_along_axis(flat, order, -1)
    m = ranked.shape[-1]
    adjusted = np.maximum.accumulate(np.minimum(1, ranked * (m - np.arange(m))), axis=-1)
    reject_sorted = adjusted < alpha
    reject = np.empty_like(reject_sorted)
    np.put_along_axis(reject, order, reject_sorted, -1)
    reject = np.moveaxis(reject.reshape(reps, nights, configs, p.shape[2]), 1, -1)
    if gate:
        alarms = reject & worse
        alarms[..., 0] = False
        return alarms
    p95 = np.quantile(latency, 0.95, axis=-1)
    slower = p95 / p95[..., :1] > 2.0
    alarms = np.concatenate([reject & worse, slower[:, :, None]], axis=2)
    alarms[..., 0] = False
    return alarms


def run(
    reps: int,
    nights: int,
    settings: WatchSettings,
    worlds: list[str],
    scenarios: list[str],
    seed: int = 0,
    restart_events: bool = False,
    uncarried: bool = False,
) -> list[str]:
    rng = np.random.default_rng(seed)
    chunk = 10
    lines = [
        f"trends benchmark: {CONFIGS} configs x {METRICS} metrics (accuracy, judge, p95 "
        f"latency) x {nights} nights x {CASES} cases, {reps} repetitions; watch: "
        f"{settings.false_alarms_per_100_nights:g} false alarms per 100 nights promised, "
        f"k = {settings.k:g} (latency {settings.k_latency:g}), h = "
        f"{settings.threshold(CONFIGS * METRICS):.2f} "
        f"({settings.threshold(CONFIGS * METRICS, settings.k_latency):.2f}), reference: "
        f"up to {settings.window} earlier nights"
        + (
            "; model events: every one restarts the watch, its first run not judged (the "
            "rule before)"
            if restart_events
            else ""
        )
        + (
            "; a new model's streams learn their spread afresh, and a first run across its "
            "event whose runs before had not learned is never judged (the rule before)"
            if uncarried
            else ""
        ),
        "",
        f"{'world':10} {'scenario':8} {'rule':6} {'series w/ false alarm':>22} "
        f"{'false/100 nights ± SE':>22} {'early':>6} {'nights w/ false':>16} "
        f"{'caught 1st night':>17} "
        f"{'<= 3 nights':>12} {'median nights':>14}",
    ]
    for world in worlds:
        for scenario in scenarios:
            n = nights if scenario in ("null", "upgrade", "requant") else CHANGE_NIGHT + 20
            change = EVENTS[scenario][0] if scenario in EARLY else CHANGE_NIGHT
            change = REPEATS[scenario][0] if scenario in REPEATS else change
            restarts = tuple(e for e in EVENTS.get(scenario, ()) if e < n)
            if scenario in SAME_WEIGHTS and not restart_events:
                restarts = ()  # the stream goes on across the same weights
            found: dict[str, list[np.ndarray]] = {"watch": [], "holm": [], "gate": []}
            for start in range(0, reps, chunk):
                data = simulate(rng, min(chunk, reps - start), n, world, scenario)
                found["watch"].append(
                    watch_alarms(
                        *data,
                        settings,
                        restarts,
                        across=not restart_events,
                        carried=not (restart_events or uncarried),
                    )
                )
                found["holm"].append(present_rule_alarms(*data))
                found["gate"].append(present_rule_alarms(*data, gate=True))
            for rule, parts in found.items():
                alarms = np.concatenate(parts)
                lines.append(_row(world, scenario, rule, alarms, n, settings.learning + 1, change))
    return lines


def _row(
    world: str,
    scenario: str,
    rule: str,
    alarms: np.ndarray,
    nights: int,
    first_judged: int,
    change: int = CHANGE_NIGHT,
) -> str:
    """One table row. ``early``: false alarms per 100 nights over the watch's first 10
    judged nights (τ² rests on few steps there; before any scenario's change); ``change``:
    the night the scenario's change begins."""
    target = {
        "drop": (TARGET, 0),
        "drop10": (TARGET, 0),
        "worse": (TARGET, 0),
        "worse25": (TARGET, 0),
        "latency": (TARGET, 2),
        **{name: (TARGET, 0) for name in REPEATS},
        **{name: (TARGET, 0) for name in EARLY if name in WORSE},
    }.get(scenario)
    false = alarms.copy()
    if target is not None:
        false[:, target[0], target[1], change:] = False
    # a repeat's figures are of its second bad night: caught there, as the first was?
    start = REPEATS[scenario][1] if scenario in REPEATS else change
    watched = nights - 1  # night 0 is the baseline
    any_false = np.mean(false.any(axis=(1, 2, 3)))
    per_rep = false.sum(axis=(1, 2, 3)) / watched * 100
    # a repetition's false alarms cluster (a host's or judge's day is every config's),
    # so the standard error is over repetitions, not over nights
    se = per_rep.std(ddof=1) / np.sqrt(len(per_rep)) if len(per_rep) > 1 else np.nan
    per_100 = f"{per_rep.mean():.2f} ± {se:.2f}"
    early = false[..., first_judged : first_judged + 10].sum(axis=(1, 2, 3)).mean() * 10
    bad_nights = false[..., 1:].any(axis=(1, 2)).mean()  # a gate's false-fail rate
    first = within3 = median = "–"
    if target is not None:
        hits = alarms[:, target[0], target[1], start:]
        delay = np.where(hits.any(-1), hits.argmax(-1) + 1, np.inf)
        first = f"{np.mean(delay <= 1):.0%}"
        within3 = f"{np.mean(delay <= 3):.0%}"
        median = f"{np.median(delay):g}" if np.isfinite(np.median(delay)) else "> 20"
    return (
        f"{world:10} {scenario:8} {rule:6} {any_false:>22.0%} {per_100:>22} "
        f"{early:>6.2f} {bad_nights:>16.1%} {first:>17} {within3:>12} {median:>14}"
    )


SCENARIOS = ("null", *DROPS, "latency", *REPEATS, *EVENTS)


def names_of(known) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names, each one of ``known`` (a typo such as
    ``drop5`` would otherwise run as the null scenario)."""

    def parse(value: str) -> list[str]:
        names = value.split(",")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}: expected names among {', '.join(known)}"
            )
        return names

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--nights", type=int, default=100)
    parser.add_argument(
        "--false-alarms", type=float, default=WatchSettings().false_alarms_per_100_nights
    )
    parser.add_argument("--k", type=float, default=WatchSettings().k)
    parser.add_argument("--k-latency", type=float, default=WatchSettings().k_latency)
    parser.add_argument(
        "--worlds", type=names_of(tuple(WORLDS)), default=list(WORLDS), help="comma-separated"
    )
    parser.add_argument(
        "--scenarios",
        type=names_of(SCENARIOS),
        default=["null", "drop", "latency"],
        help="comma-separated",
    )
    parser.add_argument("--window", type=int, default=WatchSettings().window)
    parser.add_argument("--learning", type=int, default=WatchSettings().learning)
    parser.add_argument(
        "--seed", type=int, default=0, help="the draws' seed: another seed, fresh draws"
    )
    parser.add_argument(
        "--restart-events",
        action="store_true",
        help="the rule before: every model event restarts the watch, its first run not judged",
    )
    parser.add_argument(
        "--uncarried",
        action="store_true",
        help="the rule before: a new model's streams learn their spread afresh, and a first "
        "run across its event whose runs before had not learned is never judged",
    )
    args = parser.parse_args()
    settings = WatchSettings(args.false_alarms, args.k, args.k_latency, args.window, args.learning)
    started = time.perf_counter()
    lines = run(
        args.reps,
        args.nights,
        settings,
        args.worlds,
        args.scenarios,
        args.seed,
        args.restart_events,
        args.uncarried,
    )
    for line in lines:
        print(line, flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
