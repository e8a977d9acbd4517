"""One label per stream for `evalflow trends` and the monitor's series page: an alarm
acknowledged by accepting a later run in line with the reference is no longer tagged, and
a learning night that moved reads `learning: moved` on both (the page said `watch`)."""

from __future__ import annotations

import re
from dataclasses import replace

from fastapi.testclient import TestClient

from evaluation.series import stream_state, trends_text, watch_series
from evaluation.series._render import _stream_line
from evaluation.series._stream_verdicts import Night, StreamVerdict
from evaluation.storage.baselines import accept_baseline
from evaluation.storage.db import make_engine, session_scope
from evaluation.view.app import create_app
from evaluation.wording import PARTIAL_RUN
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
    # how far it moved is its change, beside it (the newcomer's F6, stop 71: said twice)
    assert line.split("  ")[-1] == "learning: moved" and " change -0." in line
    html = TestClient(create_app(engine)).get("/series/learn").text
    tag = f'data-config="{moved.config}" data-metric="{moved.metric}"'
    article = html.split(tag)[1].split("</article>")[0]
    assert 'data-status="learning: moved"' in article
    said = line.split("  ")[-1]  # trends' state
    assert f'<span class="tag">{said}</span>' in article


def test_a_judged_night_that_rose_on_quality_reads_up_on_the_page_and_in_trends():
    """The newcomer's F10: a prompt edit's +0.500 [+0.205, +0.795] read just "ok". A judged
    night of a quality metric whose change's interval lies wholly above 0 reads "up":
    informational, never an alarm (the watch stays one-sided)."""
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 6, series="rise", drop_from=0, seed=4)  # t=0.7 weak all along
        (risen,) = add_nights(session, 1, series="rise", seed=5, first=6)  # then fixed
    with session_scope(engine) as session:
        watch = watch_series(session, "rise")
    stream = next(s for s in watch.streams if s.label == "t=0.7" and s.metric == "exact_match")
    last = stream.last
    assert last.p is not None and last.change_low > 0 and not last.alarm
    assert stream.status == "up" and stream.rose(last)
    steady = next(s for s in watch.streams if s.label == "t=0" and s.metric == "exact_match")
    assert steady.status == "ok"
    assert not any(s.rose(s.last) for s in watch.streams if s.metric != "exact_match")
    assert _line(trends_text(watch), "t=0.7", "exact_match").endswith("  up")
    assert f"no alarm on {risen}" in trends_text(watch)
    html = TestClient(create_app(engine)).get("/series/rise").text
    tag = f'data-config="{stream.config}" data-metric="{stream.metric}"'
    article = html.split(tag)[1].split("</article>")[0]
    assert 'data-status="up"' in article and '<span class="tag">up</span>' in article
    (point,) = re.findall(rf"<title>{risen}: [^<]*</title>", article)  # its point
    assert point.endswith("(up)</title>")


def test_a_judged_drop_beyond_noise_below_the_watch_reads_down_as_a_rise_reads_up():
    """M3: a night whose drop's interval lay wholly below 0 (-0.212 [-0.418, -0.005], one-
    sided p 0.022) while its evidence stayed under half the threshold (1.33 of 3.52) read
    "ok" beside the symmetric "up". It reads "down": informational as "up" is (the
    watch's evidence decides an alarm), on a quality metric only."""
    reference = Night("fk-n07", 0.70, judged=True, p=0.4, change=0.01, change_low=-0.1,
                      change_high=0.12)  # fmt: skip
    dropped = Night("fk-n08", 0.50, change=-0.212, change_low=-0.418, change_high=-0.005,
                    p=0.022, evidence=1.33, judged=True)  # fmt: skip

    def stream(metric: str, higher: bool, *nights: Night) -> StreamVerdict:
        return StreamVerdict("c", "t=0.7", metric, higher, nights, 3.52, "fk-n00")

    assert stream("exact_match", True, reference, dropped).status == "down"
    assert stream("exact_match", True, reference, dropped).state == "down"
    assert stream("exact_match", True, dropped, reference).status == "ok"  # 0 inside
    assert stream("latency_p95", False, reference, dropped).status == "ok"  # operational
    assert stream("exact_match", True, reference, replace(dropped, evidence=1.8)).status == (
        "watch"  # half the threshold reached: the watch says it
    )
    assert stream("exact_match", True, reference, replace(dropped, p=None)).status == "ok"


def test_a_partial_night_after_evidence_at_half_h_reads_one_state_in_trends_and_the_heading():
    """recheck-3: a smoke night whose stream's evidence (its last judged night's) reached
    half the threshold read "partial run: not judged … watch" in trends but "watch" alone
    in the monitor's heading; one state on both, as for an earlier alarm (ncwatch-2)."""
    alarmed = Night("fk-n06", 0.40, change=-0.3, p=1e-6, evidence=4.1, alarm=True, judged=True)
    judged = Night("fk-n07", 0.62, change=-0.1, p=0.01, evidence=2.0, judged=True)
    smoke = Night("fk-n08", 0.70, evidence=2.0, partial=True)
    stream = StreamVerdict("c", "t=0.7", "exact_match", True, (judged, smoke), 3.52, "fk-n00")
    assert stream.status == "watch"
    assert stream_state(stream, 3) == f"{PARTIAL_RUN} (watch)"
    line = _stream_line(stream, 3)
    assert line.count(PARTIAL_RUN) == 1 and line.endswith(
        f"{PARTIAL_RUN} (watch)  evidence 2.00/3.52"
    )
    after = replace(stream, nights=(alarmed, judged, smoke))
    assert stream_state(after, 3) == f"{PARTIAL_RUN} (watch; alarm on fk-n06)"
