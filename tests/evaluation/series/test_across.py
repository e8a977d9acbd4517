"""A model's event in a series (docs/trends.md, "Series, and what each run really ran
with"). Newcomers' M9: a server upgrade that made every model worse restarted every
stream, which learned the worse level as the normal one: no alarm, no gauge, nothing for
`--fail-on-alarm`. The same weights under a new server version go on, judged across it;
a new digest restarts the stream, its first run judged against the runs before it; what
a server said about its models is shown escaped, as everything else from outside."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from evaluation.series import (
    SeriesWatch,
    StreamVerdict,
    gate,
    gate_text,
    trends_text,
    watch_payload,
    watch_series,
)
from evaluation.storage.db import make_engine, session_scope
from tests.support.series_db import CHANGING, STEADY, add_nights
from tests.support.series_db import stream_of as stream


@pytest.fixture(scope="module")
def engine():
    return make_engine("sqlite://")


def test_a_degraded_model_after_a_server_upgrade_over_the_same_weights_alarms(engine):
    with session_scope(engine) as session:
        names = add_nights(session, 8, series="upgraded", server_from=6, drop_from=6, seed=2)
    with session_scope(engine) as session:
        watch = watch_series(session, "upgraded")
    dropped = stream(watch, CHANGING, "exact_match")
    assert names[6] in dropped.alarm_nights  # the upgrade's first run, judged across it
    assert [(s.config, s.metric) for s in watch.alarms] == [(CHANGING.hash, "exact_match")]
    assert f"ALARM on {names[7]}:" in trends_text(watch)
    assert all(s.segment_start == names[0] for s in watch.streams)  # nothing restarted
    (event,) = watch.events
    assert (event.experiment, event.kind, event.restarts) == (
        names[6],
        "server_version_changed",
        False,
    )
    assert event.message.startswith("server version of m:1b on gpu1 changed from 0.6.8 to 0.7.0")
    assert ", the same weights (oldoldold" in event.message
    assert event.message.endswith("): compared across")


def test_a_noise_only_server_upgrade_does_not_alarm(engine):
    with session_scope(engine) as session:
        names = add_nights(session, 10, series="upgraded-alike", server_from=6, seed=3)
    with session_scope(engine) as session:
        watch = watch_series(session, "upgraded-alike")
    assert [e.kind for e in watch.events] == ["server_version_changed"]
    for s in watch.streams:  # judged on, night after night, across the upgrade
        assert s.segment_start == names[0] and not s.alarm_nights
        assert all(n.judged for n in s.nights[4:])
    assert watch.alarms == () and f"no alarm on {names[-1]}." in trends_text(watch)


def test_a_new_digest_restarts_the_stream_and_its_first_run_is_judged_across(engine):
    """The first run after a new digest is judged as the next night of the stream before
    it (its CUSUM continued): a drop beyond noise alarms there; a config that did not
    move is judged and passes; the runs after it are judged against the new model's level."""
    with session_scope(engine) as session:
        names = add_nights(session, 7, series="requant", digest_from=6, drop_from=6, seed=5)
    with session_scope(engine) as session:
        watch = watch_series(session, "requant")
    dropped, steady = stream(watch, CHANGING, "exact_match"), stream(watch, STEADY, "exact_match")
    night = dropped.last
    assert night.alarm and night.judged and night.p < 1e-4 and not night.moved
    assert dropped.segment_start == steady.segment_start == names[6]
    (event,) = watch.events
    assert event.restarts and event.message.endswith(
        f"between {names[5]} and {names[6]}: learned afresh; its first run judged across it"
    )
    assert night.change < -0.2 and dropped.state == "ALARM"
    assert steady.last.judged and not steady.last.alarm and not steady.last.moved
    assert watch.alarms == (dropped,)
    said = dropped.describe()
    assert ", across its model's event, against " in said and f"{names[0]}…" in said
    assert dropped.flipped and dropped.reference[0] == names[0]
    (alarm,) = watch_payload(watch)["alarms"]
    assert alarm["message"] == said and alarm["z"] == night.z
    text = trends_text(watch)
    assert f"ALARM on {names[6]}:" in text and "nothing judged" not in text
    with session_scope(engine) as session:  # the next run: against the new model's level
        add_nights(session, 1, series="requant", digest_from=6, drop_from=6, seed=6, first=7)
        later = watch_series(session, "requant")
    dropped = stream(later, CHANGING, "exact_match")
    # judged at once: the spread is the one the runs before learned (their 5 changes),
    # where the new model's stream learned it afresh for 3 runs before
    assert dropped.segment_start == names[6] and dropped.last.judged and dropped.carried == 5
    assert dropped.last.p > 0.01 and dropped.state.endswith(f" (alarm on {names[6]})")
    assert later.alarms == ()


def test_a_digest_flapping_between_two_is_judged_against_the_old_weights_runs(engine):
    """Weights A for 8 nights, then B (worse), A, B: the second B night is judged against
    A's runs, not the one A night since the last flap (never learned: B's drop went
    unjudged, 'learning: moved', after its first night)."""
    with session_scope(engine) as session:
        names = add_nights(session, 11, series="flapping", flapped=(8, 10), seed=5)
    with session_scope(engine) as session:
        watch = watch_series(session, "flapping")
    dropped, steady = stream(watch, CHANGING, "exact_match"), stream(watch, STEADY, "exact_match")
    assert [e.experiment for e in watch.events] == names[8:]
    assert dropped.segment_start == names[10]
    night = dropped.last
    assert night.judged and night.alarm and not night.moved and night.change < -0.2
    assert watch.alarms == (dropped,) and f"ALARM on {names[10]}:" in trends_text(watch)
    assert steady.last.judged and not steady.last.alarm
    assert dropped.reference[0] == names[0] and names[8] not in dropped.reference


def test_a_new_digest_after_a_night_that_said_none_is_judged_across(engine):
    """Recheck's R4: weights A, a night whose server said no digest, then B (worse): no
    event was read, so B's runs were one stream with A's, never a new model's (a same-
    quality B never learned afresh, nothing said). Now the event is at B's first run,
    between the last run that said A and it, judged across against A's runs (the night
    that said none is not one of them), and B's later runs against B's level."""
    names, watch, dropped = _after_a_silent_night(
        engine, "model_digest_changed", 11, series="unsaid", digest_from=9, unsaid=(8,)
    )
    first, last = dropped.nights
    assert first.alarm and first.judged and first.change < -0.2
    assert last.judged and dropped.state.endswith(f"(alarm on {names[9]})")
    assert names[8] not in stream(watch, STEADY, "exact_match").reference


def test_a_worse_model_in_a_series_first_runs_alarms_once_the_watch_has_learned(tmp_path, capsys):
    """Recheck's R5: weights A for 2 runs, then B, 40 points worse on one config. The
    runs before had not learned the series' noise, so B's first run was `learning:
    moved`, then learned as the level: no alarm ever. Now it is judged by the run that
    first judges B's stream (night 5: A's change and B's two teach the spread), its
    alarm raised there: `--fail-on-alarm` exits 1 on that run, the gauge counts it."""
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'early.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 5, series="early", digest_from=2, drop_from=2, seed=5)
    with session_scope(make_engine(url)) as session:
        watch = watch_series(session, "early")
    dropped = stream(watch, CHANGING, "exact_match")
    assert dropped.nights[0].moved and not dropped.nights[0].judged and watch.alarms == ()
    assert "nothing judged on early-night-04 yet: the next full run is judged." in trends_text(
        watch
    )
    with session_scope(make_engine(url)) as session:  # the run that first judges B's
        names += add_nights(session, 1, series="early", digest_from=2, drop_from=2, first=5)
    with session_scope(make_engine(url)) as session:
        watch = watch_series(session, "early")
    dropped, steady = stream(watch, CHANGING, "exact_match"), stream(watch, STEADY, "exact_match")
    first = dropped.nights[0]
    assert first.alarm and first.judged and not first.moved and first.judged_on == names[5]
    assert steady.nights[0].judged and not steady.nights[0].alarm  # judged alike, in line
    assert watch.alarms == (dropped,) and not dropped.last.alarm
    capsys.readouterr()
    assert main(["--database", url, "trends", "early", "--fail-on-alarm"]) == 1
    out = capsys.readouterr().out
    assert f"ALARM on {names[5]}:" in out
    assert (
        f"exact_match of t=0.7 changed by -0.375 at {names[2]}, across its model's event "
        f"(judged on {names[5]}, once the watch had learned the noise), against "
        f"{names[0]}…{names[1]} (2 nights)"
    ) in " ".join(out.split())
    assert f"(evalflow view {names[2]})" in out  # the outputs of the run that changed
    with session_scope(make_engine(url)) as session:  # a later run: the alarm shown, not raised
        names += add_nights(session, 1, series="early", digest_from=2, drop_from=2, first=6)
    assert main(["--database", url, "trends", "early", "--fail-on-alarm"]) == 0
    assert f"(alarm on {names[2]})" in capsys.readouterr().out


def test_the_fail_on_alarm_exit_code_the_gate_and_the_gauge_follow(tmp_path, capsys):
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from evaluation.observability import observability_app
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'across.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        names = add_nights(session, 7, series="worse", digest_from=6, drop_from=6, seed=5)
        steady = add_nights(session, 7, series="steady", digest_from=6, seed=5)
    assert main(["--database", url, "trends", "worse", "--fail-on-alarm"]) == 1
    assert f"ALARM on {names[6]}:" in capsys.readouterr().out
    assert main(["--database", url, "trends", "steady", "--fail-on-alarm"]) == 0
    assert main(["--database", url, "gate", names[6], "--baseline", names[5]]) == 1
    assert main(["--database", url, "gate", steady[6], "--baseline", steady[5]]) == 0
    out = capsys.readouterr().out
    assert "note: not run alike (compared all the same): model digest of m:1b" in out
    scraped = TestClient(observability_app(make_engine(url))).get("/metrics").text
    gauge = {
        s.labels["series"]: s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == "evalflow_trend_alarm"
    }
    assert gauge == {"worse": 1.0, "steady": 0.0}


def test_what_a_server_said_is_shown_escaped(engine):
    """A server version, a quantisation (a model's details) or a model name holding an
    escape sequence is shown as text, in the events and the gate's notes alike: a
    server could otherwise clear the screen or draw a line evalflow did not write."""
    with session_scope(engine) as session:
        names = add_nights(session, 2, series="escaped", seed=7)
        session.execute(
            text(
                "UPDATE series_run_models SET server_version = :v, quantization = :q "
                "WHERE experiment = :e"
            ),
            {"v": "0.7.0\x1b[2J\x1b]0;owned\x07", "q": "Q4\x1b[31m", "e": names[1]},
        )
    with session_scope(engine) as session:
        watch = watch_series(session, "escaped")
        result = gate(session, names[1], names[0])
    shown = trends_text(watch) + gate_text(result)
    assert "\x1b" not in shown and "\x07" not in shown
    assert "to 0.7.0\\x1b[2J\\x1b]0;owned\\x07 between" in shown
    assert "to Q4\\x1b[31m between" in shown
    assert all("\x1b" not in e.message for e in watch.events)


def test_a_new_model_after_a_night_that_said_nothing_is_judged_against_the_runs_before_it(engine):
    """Recheck's R4: a server that says no digest (an OpenAI-compatible one) said a new
    version after a night that said nothing of its model: the event is between the last
    run that said the old one and it, but its first run was judged against every run
    before, the silent night among them (`against quiet-night-00…quiet-night-08 (9
    nights)`),
    where docs/trends.md says that night is not one of them: it may have served the new
    model already. Now the reference ends at the last run that said the old version."""
    never = tuple(range(10))  # no night says a digest
    names, watch, dropped = _after_a_silent_night(
        engine,
        "server_version_changed",
        10,
        series="quiet",
        server_from=9,
        unsaid=never,
        quiet=(8,),
    )
    assert dropped.nights[0].alarm
    assert dropped.reference == tuple(names[:8])
    assert f"against {names[0]}…{names[7]} (8 nights)" in trends_text(watch)


def _after_a_silent_night(
    engine, kind: str, nights: int, **how
) -> tuple[list[str], SeriesWatch, StreamVerdict]:
    """``nights`` nights (``how``: ``add_nights``'), CHANGING worse from night 9, where
    the one event, ``kind``, is between night 7, the last that said the old value, and
    night 9 (night 8 said none): the names, the watch and CHANGING's exact_match."""
    with session_scope(engine) as session:
        names = add_nights(session, nights, drop_from=9, **how)
    with session_scope(engine) as session:
        watch = watch_series(session, how["series"])
    (event,) = watch.events
    assert (event.previous, event.experiment, event.kind) == (names[7], names[9], kind)
    dropped = stream(watch, CHANGING, "exact_match")
    assert dropped.segment_start == names[9]
    return names, watch, dropped
