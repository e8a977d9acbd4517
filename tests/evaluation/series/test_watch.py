"""The watch's statistics on arrays: the CUSUM's threshold, the nightly z on the normal
scale when nothing changes, and evidence where something does."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.series._watch import (
    WatchSettings,
    between_night_var,
    cusum,
    cusum_threshold,
    mean_stream_z,
    p95_stream_z,
    siegmund_arl,
    watch_stream,
)


def test_the_threshold_inverts_siegmunds_run_length():
    # Siegmund's approximation for k = 0.5, h = 4: ARL0 ≈ 336 (exact value 336, Hawkins
    # & Olwell 1998, table 3.1)
    assert siegmund_arl(4.0, 0.5) == pytest.approx(336, rel=0.02)
    h = cusum_threshold(1500, 0.75)
    assert siegmund_arl(h, 0.75) == pytest.approx(1500, rel=1e-6)
    # more streams share the same promise: each gets a longer run length, a higher h
    assert WatchSettings().threshold(30) > WatchSettings().threshold(3)


def test_cusum_accumulates_a_small_lasting_change_and_restarts_after_an_alarm():
    z = np.array([0.0, 1.5, 1.5, 1.5, 1.5, 0.0, np.nan, 5.0])
    path, alarms = cusum(z, k=0.5, h=2.5)
    assert path.tolist()[:4] == [0.0, 1.0, 2.0, 3.0]
    assert alarms.tolist() == [False, False, False, True, False, False, False, True]
    assert path[4] == 1.0  # restarted at 0 after the alarm, then +1.5 − 0.5
    assert path[6] == path[5]  # a night not judged leaves the evidence as it was


def simulated(rng, nights, cases=150, day_sd=0.0, drop_from=None, drop=0.0):
    ease = rng.uniform(0.4, 1.0, cases)
    day = day_sd * rng.standard_normal((nights, 1))
    p = np.clip(ease + day, 0, 1) * np.ones((nights, cases))
    if drop_from is not None:
        p[drop_from:] -= drop
    return (rng.random((400, nights, cases)) < p).astype(float)


def test_nightly_z_is_standard_normal_when_nothing_changes_even_when_days_differ():
    rng = np.random.default_rng(0)
    for day_sd in (0.0, 0.03):
        _, _, z, _ = mean_stream_z(
            simulated(rng, 30, day_sd=day_sd), higher_is_better=True, window=30, learning=3
        )
        assert np.isnan(z[:, :4]).all()  # night 0 opens the reference, 1-3 teach τ
        judged = z[:, 4:]
        assert abs(np.mean(judged)) < 0.1
        assert 0.85 < np.std(judged) < 1.15
        assert np.mean(judged > 2.5) < 0.012  # a normal tail: 0.006


def test_a_drop_gives_evidence_on_the_night_it_starts():
    rng = np.random.default_rng(1)
    theta, _, z, _ = mean_stream_z(
        simulated(rng, 12, drop_from=10, drop=0.1), higher_is_better=True, window=30
    )
    assert np.mean(theta[:, 10]) == pytest.approx(0.1, abs=0.01)  # worse direction: +
    assert np.mean(z[:, 10]) > 2.0 and abs(np.mean(z[:, 9])) < 0.3


def test_between_night_variance_is_recovered_from_the_nights_before():
    rng = np.random.default_rng(2)
    steps = rng.normal(0, np.sqrt(2 * (0.01 + 0.04)), (2000, 40))  # within 0.01, τ² 0.04
    tau2, counts = between_night_var(steps, np.full(steps.shape, 0.02), min_steps=3)
    assert np.isnan(tau2[:, :4]).all() and counts[0, 39] == 38
    assert np.mean(tau2[:, 39]) == pytest.approx(0.04, rel=0.05)


def test_twice_the_p95_latency_crosses_the_threshold_on_its_first_night():
    rng = np.random.default_rng(3)
    latency = np.exp(
        0.3 * rng.standard_normal((200, 1, 150)) + 0.15 * rng.standard_normal((200, 25, 150))
    )
    latency[:, 20:] *= 2.0
    _, _, z, _ = p95_stream_z(latency, window=30, floor=0.05)
    settings = WatchSettings()
    _, alarms = cusum(z, settings.k, settings.threshold(30))
    assert alarms[:, 20].mean() >= 0.95
    assert alarms[:, :20].sum() <= 2


def test_the_nights_before_a_new_model_teach_its_stream_the_spread():
    """A new model's stream learns how much nights differ from the changes of the nights
    before its event too (``prior``): judged from its second night, where alone it
    learned for three; its reference stays its own nights, and the step across the
    event (a new level) teaches nothing."""
    rng = np.random.default_rng(5)
    before = simulated(rng, 6)[:50]
    after = simulated(rng, 4)[:50] * 0  # another level entirely: every case wrong
    after[:, :, ::2] = 1.0
    _, _, afresh, _ = mean_stream_z(after, higher_is_better=True, window=30)
    theta, _, z, _ = mean_stream_z(after, higher_is_better=True, window=30, prior=before)
    assert np.isnan(afresh[:, :4]).all() and np.isnan(z[:, 0]).all()
    assert np.isfinite(z[:, 1:]).all() and (theta[:, 1:] == 0).all()  # its own level
    latency = np.exp(0.15 * rng.standard_normal((50, 10, 150)))
    _, _, afresh, _ = p95_stream_z(latency[:, 6:] * 2, window=30, floor=0.05)
    _, _, z, _ = p95_stream_z(latency[:, 6:] * 2, window=30, floor=0.05, prior=latency[:, :6])
    assert np.isnan(afresh[:, :4]).all() and np.isfinite(z[:, 1:]).all()
    assert np.abs(z[:, 1:]).max() < 4  # twice as slow throughout: no change from its first


def _watched(values: np.ndarray, streams: int) -> tuple[np.ndarray, ...]:
    """``watch_stream`` over per-case values ``[..., night, case]`` (higher is better), h
    set for a series of ``streams`` streams."""
    settings = WatchSettings()
    return watch_stream(
        lambda out: mean_stream_z(values, higher_is_better=True, window=30, excluded=out),
        values.shape[:-1],
        settings.k,
        settings.threshold(streams),
    )


def test_a_collapse_on_a_learning_night_leaves_the_spread_so_its_repeat_alarms():
    """ncwatch-4: 36 cases, 20 right; 14 of them wrong on the third night (learning) and
    19 on the sixth. Kept in the spread, the first collapse's steps widened the interval
    that judged the second: p 0.086, "ok". Judged against the other nights' spread once
    the stream has learned, it would have alarmed alone (z 4.65 ≥ h + k = 4.27 at the
    newcomer's 20 streams): it leaves as an alarmed night does."""
    right = (np.random.default_rng(3).random(36) < 0.55).astype(float)
    nights = np.tile(right, (6, 1))
    for night, wrong in ((1, 1), (2, 14), (4, 1), (5, 19)):
        nights[night, np.flatnonzero(right)[:wrong]] = 0.0
    *_, alone = mean_stream_z(nights[None], higher_is_better=True, window=30)
    assert np.isfinite(alone[0]).tolist() == [False, True, True, True, False, False]
    assert alone[0, 2] == pytest.approx(4.65, abs=0.01)
    _, _, z, _, alarms, out = _watched(nights[None], streams=20)
    assert out[0].tolist() == [False, False, True, False, False, True]  # and the alarm
    assert np.isnan(z[0, 4])  # it learns one night longer: night 4 teaches it
    assert alarms[0, 5] and z[0, 5] > 6  # p 3e-10


def test_nights_that_all_move_by_the_machines_load_still_teach_the_spread():
    """Tokens/s moved by the machine's load every night (log-sd 0.15; a case's speed
    precise to 1%): nearly every learning night moves beyond its case noise, so moved
    nights leaving the spread would leave nothing to learn it from. Against the other
    nights' spread almost none would have alarmed alone: judged from the fourth night,
    as before."""
    rng = np.random.default_rng(5)
    load = 0.15 * rng.standard_normal((400, 12, 1))
    speed = np.log(17) + 0.01 * rng.standard_normal((400, 12, 20)) - load
    theta, se2, *_ = mean_stream_z(speed, higher_is_better=True, window=30)
    assert (np.abs(theta[:, 1:4]) > 1.96 * np.sqrt(se2[:, 1:4])).mean() > 0.9  # moved
    _, _, z, _, _, out = _watched(speed, streams=20)
    assert out[:, 1:4].mean() < 0.01 and np.isfinite(z[:, 4]).mean() > 0.98


def test_a_drop_that_lasts_from_a_learning_night_on_leaves_the_stream_judged():
    """The nights the stream learned from are judged against the others' spread once, at
    the night it first judges: a drop from its last learning night on takes that night
    out, and the night after it teaches the stream in its place (judged against the
    others, each night of the drop would have alarmed alone: taken out in turn, the
    stream would never learn)."""
    right = (np.random.default_rng(3).random(36) < 0.55).astype(float)
    nights = np.tile(right, (10, 1))
    nights[3:, np.flatnonzero(right)[:14]] = 0.0  # 14 of 20 right answers wrong from night 3
    _, _, z, _, _, out = _watched(nights[None], streams=20)
    assert out[0, :5].tolist() == [False, False, False, True, False]
    assert np.isnan(z[0, 4]) and np.isfinite(z[0, 5:]).all()
