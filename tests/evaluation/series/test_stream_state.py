"""One label per stream for `evalflow trends` and the monitor's series page: an alarm
acknowledged by accepting a later run in line with the reference is no longer tagged, and
a learning night that moved reads `learning: moved` on both (the page said `watch`)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from evaluation.series import trends_text, watch_series
from evaluation.storage.baselines import accept_baseline
from evaluation.storage.db import make_engine, session_scope
from evaluation.view.app import create_app
from tests.support.series_db import add_nights


def _line(text: str, label: str, metric: str) -> str:
    lines = text.splitlines()
    block = lines[next(i for i, x in enumerate(lines) if x.startswith(f"{label}  (since")) :]
    return next(x for x in block if x.startswith(f"  {metric} "))


def test_an_alarm_acknowledged_by_an_accepted_run_is_no_longer_tagged():
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(session, 8, series="wt", drop_from=7, seed=1)  # one bad night
        names += add_nights(session, 3, series="wt", seed=2, first=8)  # fixed
    with session_scope(engine) as session:
        before = trends_text(watch_series(session, "wt"))
    assert _line(before, "t=0.7", "exact_match").endswith(f"ok (alarm on {names[7]})")
    with session_scope(engine) as session:
        accept_baseline(session, names[9])  # the good night after the fix: level confirmed
    with session_scope(engine) as session:
        watch = watch_series(session, "wt")
    stream = next(s for s in watch.streams if s.label == "t=0.7" and s.metric == "exact_match")
    assert stream.accepted == names[9] and not stream.restarted
    assert stream.alarm_nights == (names[7],) and stream.last_alarm is None
    assert _line(trends_text(watch), "t=0.7", "exact_match").endswith("  ok")


def test_a_learning_night_that_moved_has_one_label_on_the_page_and_in_trends():
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 4, series="learn", partial=(2,), drop_from=3, seed=3)
    with session_scope(engine) as session:
        watch = watch_series(session, "learn")
    (moved,) = [s for s in watch.streams if s.last.moved]
    assert moved.status == "learning: moved"
    line = _line(trends_text(watch), moved.label, moved.metric)
    assert line.split("  ")[-1].startswith("learning: moved -0.")
    html = TestClient(create_app(engine)).get("/series/learn").text
    tag = f'data-config="{moved.config}" data-metric="{moved.metric}"'
    article = html.split(tag)[1].split("</article>")[0]
    assert 'data-status="learning: moved"' in article
    said = line.split("  ")[-1]  # trends' state: how far it moved, not judged yet
    assert f'<span class="tag">{said}</span>' in article
