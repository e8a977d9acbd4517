"""F1 of a newcomer's nights on llama.cpp: one generation stored 50,261.8 tokens/s
(6 tokens in 0.12 ms of a 5.6 s request). Read as it was, it made its night a spike,
lifted the reference the later nights were compared with to 28.8/s while every night
ran at ~17/s, and a later normal night read as a 25-43% drop. Such a value is read as
none (``possible_decode_rate``), and one case's outlier can move a night's tokens/s by
at most a bounded amount (``_frames.TOKENS_SPREAD``)."""

from __future__ import annotations

from math import exp, log

import pytest
from sqlalchemy import text

from evaluation.monitor._series_page import reference_level
from evaluation.series import watch_series
from evaluation.series._frames import TOKENS_SPREAD
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import generation_facts_frame, generations_frame, get_experiment
from tests.support.series_db import STEADY, add_nights, steady_speeds

NIGHTS = 6


def _watched(outlier: float, latency: float):
    """Six nights of one config at ~17 tokens/s (6 tokens a generation), the third
    night's first generation at ``outlier`` tokens/s in ``latency`` seconds."""
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(session, NIGHTS, series="nc", configs=(STEADY,))
        steady_speeds(session)
        third = get_experiment(session, names[2]).id
        first = session.execute(
            text("SELECT MIN(id) FROM generations WHERE experiment_id = :e"), {"e": third}
        ).scalar_one()
        session.execute(
            text("UPDATE generations SET tokens_per_s = :v, latency_s = :l WHERE id = :i"),
            {"v": outlier, "l": latency, "i": first},
        )
    with session_scope(engine) as session:
        watch = watch_series(session, "nc")
        frames = (generations_frame(session, third), generation_facts_frame(session, third))
    (speed,) = [s for s in watch.streams if s.metric == "tokens_per_s"]
    return speed, frames


def test_a_stored_impossible_speed_is_read_as_none_and_moves_no_night():
    speed, frames = _watched(50_261.8, 5.589)
    for frame in frames:
        assert frame["tokens_per_s"].isna().sum() == 1  # every reader: the same rule
        assert frame["tokens_per_s"].max() < 20
    third = speed.nights[2]
    assert third.value == pytest.approx(18.0, rel=0.05)
    last = speed.nights[-1]
    assert abs(last.change) < 0.05 and last.judged
    assert reference_level(speed) == pytest.approx(18.0, rel=0.05)


def test_one_possible_outlier_moves_its_night_by_a_bounded_share():
    """500 tokens/s in 1 s is possible (83 times the wall rate), but one case 29 times
    faster than the others is no night 29^(1/60) faster: its case counts at most
    TOKENS_SPREAD times the night's median, so a later normal night is not a drop."""
    speed, _ = _watched(500.0, 1.0)
    median = speed.nights[1].value
    assert speed.nights[2].value <= median * exp(log(TOKENS_SPREAD) / 60) * 1.02
    last = speed.nights[-1]
    assert abs(last.change) < 0.02
