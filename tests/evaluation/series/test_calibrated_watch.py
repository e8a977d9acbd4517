"""A series watched on the calibrated level: its nights judged on the calibrated cases in
the item bank's full-suite estimate, shown as estimates; an escalated night's full score;
a bank that cannot serve said in a note (the plain mean instead). No Prefect."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from evaluation.itembank import BankEstimates, calibrate_bank, estimate_weights, fit_2pl
from evaluation.itembank._estimate import calibrated_estimate
from evaluation.series import record_calibrated_night, record_run, watch_series
from evaluation.series.schema import CalibratedNight
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import suite_fingerprint
from tests.support.itembank_db import build, world
from tests.support.results_db import MISSING, add_experiment, make_config, make_suite

SUITE = make_suite(40)
SUBSET = tuple(range(0, 40, 4))  # 10 of 40 cases, as the level's seeded order would pick
STEADY, CHANGING = make_config("m:1b", 0.0), make_config("m:1b", 0.7)


def _nights(session, nights: range, *, drop_from: int, full_last: bool = False) -> list[str]:
    """Calibrated nights of series ``nightly`` (the subset's cases only); from
    ``drop_from`` on CHANGING is right a third as often; the last night, with
    ``full_last``, ran every case for CHANGING (an escalation)."""
    rng = np.random.default_rng(nights.start)
    ease = np.random.default_rng(3).uniform(0.55, 0.95, len(SUITE.cases))
    names = []
    count = nights.stop
    for night in nights:
        scores = {}
        for config in (STEADY, CHANGING):
            p = ease * (1 / 3 if config is CHANGING and night >= drop_from else 1.0)
            drawn = (rng.random(len(p)) < p).astype(float)
            every = full_last and night == count - 1 and config is CHANGING
            scores[config] = {
                "exact_match": [v if every or i in SUBSET else MISSING for i, v in enumerate(drawn)]
            }
        name = f"nightly-{night:02d}"
        experiment = add_experiment(session, name, SUITE, scores)
        experiment.spec, experiment.status = {"name": "nightly"}, "completed"
        session.add(experiment)
        record_run(
            session,
            name,
            series="nightly",
            explicit=False,
            suite=SUITE.name,
            suite_digest=suite_fingerprint(SUITE) + "+r",
            models=[],
        )
        record_calibrated_night(
            session, name, cases=[SUITE.cases[i].id for i in SUBSET], suite_cases=40
        )
        names.append(name)
    return names


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> str:
    """A bank calibrated from 8 configs' history, and six calibrated nights, CHANGING's
    last a drop."""
    url = f"sqlite:///{tmp_path_factory.mktemp('calibrated') / 'r.db'}"
    build(url, n_configs=8, n_cases=40, sub_cases=())
    engine = make_engine(url)
    with session_scope(engine) as session:
        calibrate_bank(session, "toy")
        _nights(session, range(6), drop_from=5)
    engine.dispose()
    return url


def _stream(watch, config, metric="exact_match"):
    return next(s for s in watch.streams if s.config == config.hash and s.metric == metric)


def test_calibrated_nights_are_judged_and_shown_in_the_banks_estimate(stored):
    engine = make_engine(stored)
    with session_scope(engine) as session:
        watch = watch_series(session, "nightly", banks=BankEstimates(session))
    engine.dispose()
    assert watch.subset == tuple(SUITE.cases[i].id for i in SUBSET)
    assert any("watched on the calibrated level: 10 of 40 cases" in n for n in watch.notes)
    changing, steady = _stream(watch, CHANGING), _stream(watch, STEADY)
    assert "estimated from 10 of 40 cases (item bank v1)" in changing.estimated
    assert changing.last.low < changing.last.value < changing.last.high
    # judged in the estimate's units: the subset's drop carried to the whole suite
    assert changing.last.judged and changing.last.change < -0.2
    assert [s.config for s in watch.beyond_noise()] == [CHANGING.hash]
    assert "estimated from 10 of 40" in steady.estimated
    # failures are watched on the same cases, and never escalate a night
    assert _stream(watch, CHANGING, "failure_rate").last.judged


def test_a_bank_that_cannot_serve_is_said_and_the_plain_mean_judged(stored):
    engine = make_engine(stored)
    with session_scope(engine) as session:
        plain = watch_series(session, "nightly")
        banks = BankEstimates(session)
        point = replace(plain.last, suite_digest="0ther+r")
        _, why = banks.usable(point, STEADY.hash, "exact_match")
    engine.dispose()
    assert any("judged on the calibrated cases' plain mean" in n for n in plain.notes)
    # labelled inline as what it is, not a bare figure with the share only in a note
    assert _stream(plain, STEADY).estimated.endswith("subset mean from 10 of 40 cases")
    assert "suite's content differs from what item bank v1 was calibrated on" in why


def test_an_escalated_night_shows_its_full_score_judged_on_the_same_cases(stored, tmp_path):
    shutil.copy(stored.removeprefix("sqlite:///"), tmp_path / "r.db")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        (name,) = _nights(session, range(6, 7), drop_from=5, full_last=True)
        record_calibrated_night(
            session, name, cases=[], suite_cases=0, escalated="exact_match of m:1b moved"
        )
        assert len(session.get(CalibratedNight, name).case_ids) == 10  # kept
        watch = watch_series(session, "nightly", banks=BankEstimates(session))
    engine.dispose()
    changing = _stream(watch, CHANGING)
    assert changing.estimated == ""  # every case ran: the measured score, not an estimate
    assert changing.last.value < 0.45 and changing.last.judged
    assert "escalated to the full suite: exact_match of m:1b moved" in " ".join(watch.notes)
    assert "estimated from 10 of 40" in _stream(watch, STEADY).estimated


def test_the_weights_are_the_estimates_derivative():
    y, _ = world(31, 80)
    fit = fit_2pl(y[:30], np.ones_like(y[:30]))
    run = list(range(0, 80, 8))
    observed = {i: float(y[30, i]) for i in run}
    weights = estimate_weights(fit, observed)
    base = calibrated_estimate(fit, observed, draws=1).mean
    for j in (1, 6):
        nudged = {**observed, run[j]: observed[run[j]] + 0.01}
        slope = (calibrated_estimate(fit, nudged, draws=1).mean - base) / 0.01
        assert slope == pytest.approx(weights[j], rel=0.02)
    # a shift of every case run moves the estimate, less than 1:1 (the prior holds it)
    assert 0.3 < weights.sum() < 1.0


def test_without_a_bank_a_night_of_every_case_is_shown_on_the_calibrated_ones(stored, tmp_path):
    shutil.copy(stored.removeprefix("sqlite:///"), tmp_path / "r.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with session_scope(engine) as session:
        _nights(session, range(6, 7), drop_from=99, full_last=True)  # CHANGING ran all 40
        watch = watch_series(session, "nightly")  # no bank asked for: plain means
    engine.dispose()
    rng = np.random.default_rng(6)  # _nights' draws: STEADY's, then CHANGING's
    ease = np.random.default_rng(3).uniform(0.55, 0.95, len(SUITE.cases))
    rng.random(len(ease))
    changing = rng.random(len(ease)) < ease
    last = _stream(watch, CHANGING)
    assert last.last.value == pytest.approx(changing[list(SUBSET)].mean())  # not all 40's
    assert last.estimated.endswith("subset mean from 10 of 40 cases")
    assert last.cases == "10 of 40 cases"
