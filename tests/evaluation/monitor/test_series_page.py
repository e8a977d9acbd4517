"""The monitor's series page draws what `evalflow trends` says: the alarm, the events,
the interval whiskers and the partial (smoke) nights as hollow, not-judged markers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from evaluation.series import figure, watch_series
from evaluation.storage.db import make_engine, session_scope
from evaluation.view.app import create_app
from tests.support.results_db import add_experiment, make_suite
from tests.support.series_db import CHANGING, STEADY, add_nights


@pytest.fixture(scope="module")
def page():
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(
            session, 12, series="night", partial=(3,), digest_from=1, drop_from=11, seed=4
        )
    client = TestClient(create_app(engine))
    return names, client, client.get("/series/night")


def test_the_series_page_draws_alarm_event_whiskers_and_partial_nights(page):
    names, _, answer = page
    assert answer.status_code == 200
    html = answer.text
    assert 'data-status="ALARM"' in html and '<text class="alarm"' in html
    assert f'<a href="/e/{names[11]}/summary">{names[11]}</a>' in html
    assert "model digest of m:1b on gpu1 changed" in html and '<line class="event"' in html
    assert '<line class="whisker"' in html
    assert '<circle class="partial"' in html and f"{names[3]}: " in html
    # the pop-up says a partial night as trends does (recheck: "partial: not judged")
    assert f"{names[3]}: " in html.split("partial run: not judged)</title>")[0][-200:]
    # and its figures as the line under the chart and trends print them ("0.1 [0.00491, …")
    number = r"\d+\.\d{3}"
    assert re.search(rf"<title>{names[3]}: {number} \[{number}, {number}\] \(partial", html)
    # a p95 latency (night 1, a new model's first run, is judged later, by night 5)
    assert re.search(rf"<title>{names[2]}: [\d.]+ s \(learning", html)


def test_the_home_links_to_the_series_page_and_an_unknown_series_is_a_clear_404(page):
    _, client, _ = page
    assert 'href="/series/night"' in client.get("/").text
    missing = client.get("/series/nope")
    assert missing.status_code == 404
    assert "no run of series &#39;nope&#39; is stored; expected one of night" in missing.text


def test_the_homes_sparkline_leaves_a_smoke_night_out_instead_of_a_dip(page):
    _, client, _ = page
    row = client.get("/").text.split('data-series="night"')[1].split("</tr>")[0]
    # 12 nights, one of them smoke (3 cases): 11 points drawn, the smoke one a gap
    assert 'data-points="11"' in row and 'data-points="12"' in row  # latency keeps all


def test_the_homes_last_partial_night_says_so_as_trends_does():
    # recheck: the home said "partial: not judged" where trends says "partial run: not judged"
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 3, series="smoked", partial=(2,), configs=(STEADY,))
    home = TestClient(create_app(engine)).get("/").text
    row = home.split('data-series="smoked"')[1].split("</tr>")[0]
    assert '<small class="muted">partial run: not judged</small>' in row


def test_a_simulated_series_page_carries_the_simulated_banner(page):
    """As every page of a simulated run does: a screenshot must not pass for real data."""
    from evaluation.storage.repository import get_experiment

    *_, answer = page
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(session, 3, series="sim", seed=2)
        for name in names[1:]:
            get_experiment(session, name).simulated = True
    mixed = TestClient(create_app(engine)).get("/series/sim").text
    with session_scope(engine) as session:
        get_experiment(session, names[0]).simulated = True
    simulated = TestClient(create_app(engine)).get("/series/sim").text
    assert 'id="simulated">SIMULATED: these results come from' in simulated
    assert "(in this series:" not in simulated
    assert f"(in this series: {names[1]}, {names[2]})" in mixed
    assert "SIMULATED" not in answer.text


def test_the_page_prints_the_reference_and_change_of_a_ratio_as_trends_does():
    # newcomer F13: latency's reference was value − ratio (17.7 s for nights of 5-7 s)
    # and its change a bare ratio (+2.16 where trends printed +216%)
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 8, series="slow", slow_from=7, seed=3)
    with session_scope(engine) as session:
        watch = watch_series(session, "slow")
    html = TestClient(create_app(engine)).get("/series/slow").text
    (s,) = [s for s in watch.streams if s.config == CHANGING.hash and s.metric == "latency_p95"]
    shown = html.split(f'data-config="{CHANGING.hash}" data-metric="latency_p95"')[1]
    shown = shown.split("</p>")[0]
    change = figure(s.last.change, "latency_p95", change=True)  # as trends prints it
    assert s.last.change > 1.5 and change.endswith("%") and f"· change {change} [" in shown
    assert f"last {s.last.experiment}: {figure(s.last.value, 'latency_p95')}" in shown
    reference = shown.split("· reference ")[1].split(" s")[0]
    before = [n.value for n in s.nights[:-1]]  # the p95s of the nights it is compared with
    assert min(before) < float(reference) < max(before)


def test_a_stream_still_learning_is_not_ok_on_the_page_as_in_trends():
    # newcomer F11: the page's headings said "· contains ok" where trends said
    # "learning (p after 3 more full runs)"
    from evaluation.series import trends_text

    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 2, series="young", seed=5)
    with session_scope(engine) as session:
        watch = watch_series(session, "young")
    html = TestClient(create_app(engine)).get("/series/young").text
    said = trends_text(watch)
    for s in watch.streams:
        heading = html.split(f'data-config="{s.config}" data-metric="{s.metric}"')[1]
        tag = heading.split('<span class="tag">')[1].split("</span>")[0]
        assert tag.startswith("learning (p after ") and tag.endswith(" more full runs)"), tag
        assert tag in said


def test_a_metric_the_last_run_did_not_score_says_so_in_its_heading_and_last_line():
    # recheck G4: the heading said "not scored in that run", its last line "partial: not
    # judged" (the wording 33edf2a removed from trends)
    engine = make_engine("sqlite://")
    suite = make_suite(6)
    with session_scope(engine) as session:
        for name, scores in (
            ("rescored-1", {"exact_match": [1.0, 0.0] * 3, "rougeL": [0.5] * 6}),
            ("rescored-2", {"exact_match": [1.0, 0.0] * 3}),
        ):
            experiment = add_experiment(session, name, suite, {STEADY: scores})
            experiment.spec, experiment.status = {"name": "rescored"}, "completed"
    html = TestClient(create_app(engine)).get("/series/rescored").text
    shown = html.split(f'data-config="{STEADY.hash}" data-metric="rougeL"')[1].split("</p>")[0]
    assert shown.count("not scored in that run") == 2 and "partial" not in shown


def test_an_accepted_level_and_the_baseline_are_said_on_the_page_as_in_trends():
    """Newcomer (fixtrend) F11: after `baseline accept` of an alarmed run the page said
    "since ns-n6" where trends said "(exact_match since ns-n6, 1 run: its level accepted
    there)", and neither named the series' accepted baseline (only `evalflow series`)."""
    from evaluation.series import trends_text
    from evaluation.storage.repository import get_experiment

    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(session, 11, series="taken", drop_from=10, seed=1)
    with session_scope(engine) as session:
        get_experiment(session, names[10]).accepted_baseline = True
    with session_scope(engine) as session:
        watch = watch_series(session, "taken")
    said = trends_text(watch)
    html = TestClient(create_app(engine)).get("/series/taken").text
    taken = f"since {names[10]}, 1 run: its level accepted there"
    assert f"  (exact_match {taken})" in said
    heading = html.split(f'data-config="{CHANGING.hash}" data-metric="exact_match"')[1]
    assert f"is better · {taken}</small>" in heading.split("</h3>")[0]
    kept = html.split(f'data-config="{STEADY.hash}" data-metric="failure_rate"')[1]
    assert f"is better · since {names[0]}, 11 runs</small>" in kept.split("</h3>")[0]
    assert said.splitlines()[0].endswith(f" UTC), baseline {names[10]}")
    assert re.search(rf"<h2>Series taken <small[^>]*>11 runs, baseline {names[10]} · ", html)
