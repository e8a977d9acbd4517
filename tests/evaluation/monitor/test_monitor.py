"""The monitor over a small database: the live row a run writes, the summaries a
finished run keeps, the home page's sections, the run page while running and after,
the JSON's ETag, the guarded start and cancel (with a stand-in ``RunControl``: the
real Prefect one is tested against a real server in tests/browser/test_monitor_page.py)
and `evalflow status`."""

from __future__ import annotations

import asyncio
import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from evaluation.compare._leaderboard import load_leaderboard
from evaluation.monitor import (
    ControlRefused,
    FlowRunState,
    LiveRun,
    StartedRun,
    set_stage,
    status_text,
)
from evaluation.monitor._svg import sparkline
from evaluation.storage.db import session_scope
from evaluation.storage.models import Experiment, ExperimentRun, RunLive, RunSummary
from evaluation.storage.runs import CANCEL_GRACE_S, RunProcess, end_run
from evaluation.view.app import create_app
from evaluation.view.stored import summary_page
from tests.support.monitor_db import (
    FAILURE,
    NIGHTS,
    RUNNING,
    SERIES,
    build_monitor_db,
    start_running,
)

ORIGIN = "http://testserver"


class Control:
    """A RunControl that records what it was asked."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict]] = []
        self.cancelled: list[str] = []
        self.states: dict[str, FlowRunState] = {}

    def start(self, deployment, parameters):
        if deployment == "evaluate/missing":
            raise ControlRefused(404, f"deployment {deployment!r} is not registered")
        self.started.append((deployment, dict(parameters)))
        return StartedRun("id-1", "brave-otter", deployment)

    def cancel(self, flow_run_id):
        self.cancelled.append(flow_run_id)
        return "Cancelling"

    def state(self, flow_run_id):
        return self.states.get(flow_run_id)

    def deployments(self):
        return ["evaluate/on-demand-served"]

    def knows(self, flow_run_id):
        return flow_run_id.startswith("fr-")  # elsewhere: a temporary server's run


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build_monitor_db(f"sqlite:///{tmp_path_factory.mktemp('monitor') / 'm.db'}")


def keyed_client(app) -> TestClient:
    """A browser that opened the link `evalflow view` printed: it holds the key."""
    c = TestClient(app)
    c.get(f"/?key={app.state.key}", follow_redirects=False)
    return c


@pytest.fixture
def client(db):
    control = Control()
    return keyed_client(create_app(db.engine, control=control)), control


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_live_row_is_written_at_most_every_interval_and_at_the_end(db):
    now = [0.0]
    live = LiveRun(db.engine, "throttled", total=3, clock=lambda: now[0], interval_s=2.0)
    live.write()
    live.stored([None])  # 0 s after the last write: kept in memory
    with session_scope(db.engine) as session:
        assert session.get(RunLive, "throttled").done == 0
    now[0] = 2.5
    live.stored(["ValueError: bad\nsecond line"])
    with session_scope(db.engine) as session:
        row = session.get(RunLive, "throttled")
        assert (row.done, row.failed, row.failures) == (2, 1, {"ValueError: bad": 1})
    live.stored([None])  # the last one: written at once
    with session_scope(db.engine) as session:
        assert session.get(RunLive, "throttled").done == 3


def test_a_host_silent_with_requests_in_flight_is_said_with_what_ends_the_wait(db):
    # A hung server takes the request and never answers: the run says so (the log),
    # naming the host, the silence and the timeouts, again as the silence doubles.
    now, said = [0.0], []
    live = LiveRun(
        db.engine, "hung", total=4, clock=lambda: now[0], say=said.append,
        timeouts="a try gives up after 2 min", quiet_after_s=30.0,
    )  # fmt: skip
    fast, hung = live.lane("fast"), live.lane("hung")
    fast.holds()
    hung.holds()
    now[0] = 29.0
    live.tick()
    assert said == []  # not yet
    live.answered({"fast"})
    fast.close()  # its lane is done
    now[0] = 31.0
    live.tick()
    assert said == [
        "no answer from host 'hung' for 31 s (1 request waits; a hung or overloaded "
        "server?); a try gives up after 2 min"
    ]
    now[0] = 50.0
    live.tick()
    assert len(said) == 1  # once per doubling, not every tick
    now[0] = 62.0
    live.tick()
    assert len(said) == 2 and "for 1 min 2 s" in said[1]
    live.answered({"hung"})  # it answers: its silence starts over
    now[0] = 80.0
    live.tick()
    hung.close()
    now[0] = 500.0
    live.tick()  # nothing in flight: nothing to say
    assert len(said) == 2


def test_a_hosts_silence_counts_only_while_a_lane_holds_a_slot(db):
    """Recheck R5 (stop 72): lanes waiting for another run's slots were counted as
    requests sent, and the run warned of a hung server that answered in 100 ms. A try
    that fails (its slot given back) and the wait for a slot after it pause the silence;
    they do not start it over."""
    now, said = [0.0], []
    live = LiveRun(db.engine, "paused", total=4, clock=lambda: now[0], say=said.append,
                   quiet_after_s=30.0)  # fmt: skip
    lane = live.lane("shared")
    lane.waits()  # another run holds every slot
    now[0] = 600.0
    live.tick()
    assert said == [
        "1 lane waiting 10 min so far for a free slot of host 'shared' (held by no other "
        "run listed on this machine: one on another machine?)"
    ]
    said.clear()
    assert live.in_flight["shared"] == 0
    lane.holds()  # sent now
    now[0] = 620.0
    lane.holds_none()  # the try failed: its slot given back
    lane.waits()
    now[0] = 700.0  # 80 s waiting for a slot again: that wait is said, nothing else
    live.tick()
    assert len(said) == 1 and said.pop().startswith("1 lane waiting 1 min 20 s so far")
    lane.holds()
    now[0] = 710.0  # 20 s + 10 s with a request out
    live.tick()
    assert said == [
        "no answer from host 'shared' for 30 s (1 request waits; a hung or overloaded "
        "server?); the request timeout ends it"
    ]


def test_a_slow_but_healthy_host_is_not_warned_of_once_a_generation(db):
    """A newcomer's CPU server answered every ~35 s: each generation logged "no answer
    from host 'local' for 31 s". Past twice its slowest answer it is still said."""
    now, said = [0.0], []
    live = LiveRun(db.engine, "slow", total=9, clock=lambda: now[0], say=said.append,
                   quiet_after_s=30.0)  # fmt: skip
    live.lane("local").holds()
    for answer_at in (29.0, 58.0, 87.0):
        now[0] = answer_at
        live.tick()
        live.answered({"local"})
    assert said == []
    now[0] = 87.0 + 35.0  # 35 s: slower than before, within twice its slowest (29 s)
    live.tick()
    assert said == []
    now[0] = 87.0 + 59.0
    live.tick()
    assert len(said) == 1 and "no answer from host 'local' for 59 s" in said[0]


def test_a_simulated_host_is_never_said_to_hang(db):
    """The newcomer's N4: report-sections with `--time-scale 1` sleeps ~80 s a pipeline
    case on the simulated host, and its log said "no answer from host 'sim' for 32 s (4
    requests wait; a hung or overloaded server?)"; the simulated backend cannot hang."""
    now, said = [0.0], []
    live = LiveRun(db.engine, "sim", total=8, clock=lambda: now[0], say=said.append,
                   quiet_after_s=30.0, never_hung=frozenset({"sim"}))  # fmt: skip
    live.lane("sim").holds()
    live.lane("real").holds()
    now[0] = 500.0
    live.tick()
    assert len(said) == 1 and "no answer from host 'real'" in said[0]


def test_a_write_the_interval_held_back_is_written_later_not_dropped(db):
    now = [0.0]
    live = LiveRun(db.engine, "stalled", total=16, clock=lambda: now[0], interval_s=2.0)
    live.write()

    def done() -> int:
        with session_scope(db.engine) as session:
            return session.get(RunLive, "stalled").done

    live.stored([None] * 4)  # held back: 0 s since the last write
    now[0] = 1.0
    live.tick()  # not yet due
    assert done() == 0
    now[0] = 2.0
    live.tick()  # generation stalls: the timer's tick writes what was held back
    assert done() == 4
    live.tick()
    live.stored([None] * 8)  # held back again; the next event, once due, writes it
    now[0] = 4.5
    live.lane("host-a").holds()
    assert done() == 12
    live.stored([None])
    live.flush()  # the stage ends: written whatever the interval
    assert done() == 13
    sleeps: list[float] = []

    async def one_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 1:
            raise asyncio.CancelledError

    live.stored([None])
    now[0] = 7.0
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(live.keep_written(sleep=one_sleep))
    assert sleeps == [2.0, 2.0] and done() == 14


def test_a_moments_wait_for_a_slot_is_not_in_the_row_and_a_lasting_one_is_written_unasked(db):
    """M2: a host failing half its requests: after each failed try the lane gives its
    slot back and waits a moment to take one again; a row written in that moment read,
    in `status` until the next write, "1 lane waiting 5 s so far for a free slot ...
    (held by no other run listed on this machine: one on another machine?)" with 0 of 2
    slots in flight. A wait is in the row once it has lasted WAIT_SHOWN_AFTER_S (10 s),
    written by the stage's tick though nothing else changes, and gone once it ended."""
    now = [0.0]
    live = LiveRun(
        db.engine, "moment", total=8, slots={"h": 2}, clock=lambda: now[0], interval_s=2.0
    )
    live.write()

    def waiting() -> dict:
        with session_scope(db.engine) as session:
            return session.get(RunLive, "moment").waiting

    lane = live.lane("h")
    lane.holds()
    now[0] = 1.0
    lane.holds_none()  # the try failed (HTTP 500): its slot given back, a backoff
    now[0] = 1.5
    lane.waits()  # the retry takes a slot again: one slot write
    now[0] = 3.0
    live.stored([None])  # the other lane's answer: the row is written now
    assert waiting() == {}  # was {"h": {"lanes": 1, ...}}: said until the next write
    lane.holds()
    other = live.lane("h")
    now[0] = 5.0
    other.waits()  # a lasting wait: nothing else happens meanwhile
    now[0] = 14.9
    live.tick()
    assert waiting() == {}
    now[0] = 15.0
    live.tick()
    assert waiting()["h"]["lanes"] == 1
    other.holds()
    now[0] = 17.0
    live.tick()
    assert waiting() == {}


def test_home_shows_running_recent_stats_series_and_hosts(client, db):
    c, _ = client
    page = c.get("/")
    assert page.status_code == 200
    running = _text(page.text.split('id="running"')[1].split("</section>")[0])
    assert RUNNING in running and "generate" in running and "3/12 (25%)" in running
    recent = page.text.split('id="recent"')[1].split("</section>")[0]
    rows = re.findall(r'<tr data-name="([^"]+)"', recent)
    assert rows == [RUNNING, *NIGHTS[::-1]]  # newest first
    last = _text(recent.split(f'data-name="{NIGHTS[-1]}"')[1].split("</tr>")[0])
    assert "completed" in last and " 13 " in last  # 12 generations + the failed one
    assert f"1 × {FAILURE}" in last
    # the series column: a finished run's series, and a running one's (no summary yet:
    # its cell was empty)
    cells = {
        name: re.findall(r"<td[^>]*>(.*?)</td>", recent.split(f'data-name="{name}"')[1], re.S)[1]
        for name in (NIGHTS[-1], RUNNING)
    }
    assert cells == {NIGHTS[-1]: SERIES, RUNNING: RUNNING}  # its spec's name
    series = page.text.split('id="series"')[1].split("</section>")[0]
    assert f'data-series="{SERIES}"' in series
    assert series.count('data-points="3"') == 2  # the metric and the latency, 3 nights each
    stats = _text(page.text.split('id="stats"')[1].split("</section>")[0])
    assert "1 active · 4 runs" in stats and "success 100%" in stats
    hosts = page.text.split('id="hosts"')[1].split("</section>")[0]
    b = _text(hosts.split('data-host="host-b"')[1].split("</tr>")[0])
    assert "ok" not in b.split()[:2] and "unknown" not in b  # 1 of its 1 failed: failing
    assert "failing" in b
    a = _text(hosts.split('data-host="host-a"')[1].split("</tr>")[0])
    assert "ok" in a and "(1 models)" in a and "2/2" in a and RUNNING in a
    across = _text(page.text.split('id="across"')[1].split("</section>")[0])
    assert all(n in across for n in NIGHTS)
    # its configs named as the leaderboard names them (recheck: "gemma3-270m t=0 n=24
    # seed=7" here under a board of "gemma3-270m t=0", "Every config: num_predict=24 seed=7")
    with session_scope(db.engine) as session:
        board = load_leaderboard(session, NIGHTS[-1])
    rows = re.findall(r"<tr><td>(.*?)</td>", page.text.split('id="across"')[1].split("</table>")[0])
    assert rows == sorted(board.labels.values()) and "tpl=" not in across
    assert f"{board.settings_line}." in across and board.settings_line.startswith("Every config")


def test_the_monitors_pages_are_headed_by_the_monitors_name(client):
    # newcomer F10: the monitor's header said "evalflow view"; a run's own pages are view's
    c, _ = client
    for path in ("/", f"/e/{NIGHTS[0]}/live"):
        assert '<h1><a href="/">evalflow monitor</a>' in c.get(path).text, path
    assert '<h1><a href="/">evalflow view</a>' in c.get(f"/e/{NIGHTS[0]}/summary").text


def test_summaries_are_kept_and_recounted_when_the_experiment_changes(db, client):
    c, _ = client
    c.get("/")
    with session_scope(db.engine) as session:
        first = session.get(Experiment, 1)
        summary = session.get(RunSummary, first.id)
        assert summary.generations == 12 and summary.series == SERIES
        first.status = "failed"
        session.add(first)
    c.get("/")
    with session_scope(db.engine) as session:
        assert session.get(RunSummary, 1).status == "failed"
        first = session.get(Experiment, 1)
        first.status = "completed"
        session.add(first)
    c.get("/")


def test_the_live_json_answers_304_while_nothing_changed(client, db):
    c, _ = client
    first = c.get("/api/live")
    assert first.status_code == 200 and first.json()["running"][0]["name"] == RUNNING
    again = c.get("/api/live", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    live = LiveRun(db.engine, RUNNING, total=12, clock=lambda: 0.0)
    live.stored([None] * 5)
    live.write()
    changed = c.get("/api/live", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["running"][0]["done"] == 5
    start_running(db.engine)  # as the other tests expect it


def test_status_the_json_and_the_pages_say_a_hosts_lanes_wait_for_slots_and_whose(client, db):
    """Recheck R5 (stop 72): a run whose lanes all waited for another run's slots read
    "in flight: shared 4/4 slots" in `status`; now nothing is in flight, and the wait
    is said with who holds the slots, in `status`, the JSON and both pages alike."""
    from datetime import datetime, timedelta

    c, _ = client
    nightly = "'nightly' (process 11 on box)"
    now = [0.0]
    live = LiveRun(
        db.engine, RUNNING, total=12, slots={"host-a": 2}, clock=lambda: now[0],
        whose=lambda host: [(nightly, 2)],
    )  # fmt: skip
    for _ in range(2):
        live.lane("host-a").waits()
    now[0] = 10.0  # a wait is in the row once it has lasted 10 s
    live.write()
    try:
        facts = c.get(f"/api/runs/{RUNNING}").json()
        running = c.get("/api/live").json()["running"][0]
        page = _text(c.get(f"/e/{RUNNING}/live").text)
        home = _text(c.get("/").text)
    finally:
        start_running(db.engine)  # as the other tests expect it
    wait = facts["live"]["waiting"]["host-a"]
    assert (wait["lanes"], wait["held_by"]) == (2, [[nightly, 2]])
    assert running["waiting"] == facts["live"]["waiting"]
    since = datetime.fromisoformat(wait["since"])
    assert wait["words"] == (
        f"2 lanes waiting since {since:%H:%M:%S} UTC (held by another run: {nightly}, 2 of its 2)"
    )
    text = status_text(facts, now=since + timedelta(seconds=45))
    assert "in flight: host-a 0/2 slots" in text
    assert (
        "  2 lanes waiting 45 s so far for a free slot of host 'host-a' "
        f"(held by another run: {nightly}, 2 of its 2)"
    ) in text.splitlines()
    assert wait["words"] in html.unescape(page)
    assert "host-a 2 waiting for a slot" in home


def test_the_run_page_shows_the_live_figures_then_the_leaderboard(client, db):
    c, _ = client
    live = _text(c.get(f"/e/{RUNNING}/live").text)
    assert "TimeoutError: no answer in 60 s" in live
    # the newcomer's F9: "updated 2026-11-27T06:15:51+00:00 UTC", the zone twice
    assert re.search(r"updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", live), live
    assert "host-a 2 2" in live.replace("  ", " ")
    done = c.get(f"/e/{NIGHTS[0]}/live").text
    assert 'id="leaderboard"' in done and "#1" in done
    # M6: the columns of `show`'s table: its latency is p95, the figure trends and gate
    # watch (the page showed p50 as "latency p50 s": 0.307 beside show's 0.412)
    board = done.split('id="leaderboard"')[1].split("</table>")[0]
    assert "<th>p95 s</th><th>failed</th>" in board and "p50" not in board
    with session_scope(db.engine) as session:
        first = summary_page(session, NIGHTS[0]).rows[0]
    assert first.latency_p95_s != first.latency_p50_s  # the two differ in this database
    assert f"<td>{first.latency_p95_s}</td><td>{first.failed}</td></tr>" in board
    assert c.get(f"/api/runs/{NIGHTS[0]}").json()["summary"]["generations"] == 12


def test_a_crashed_run_is_crashed_in_recent_runs_and_stats_too(tmp_path):
    """One crashed detection (experiment_status) for every section of the home page,
    even when the page was shown (and kept) while the run was alive."""
    crashed = build_monitor_db(f"sqlite:///{tmp_path / 'c.db'}")
    c = keyed_client(create_app(crashed.engine, control=Control()))
    assert "1 active" in _text(c.get("/").text.split('id="stats"')[1].split("</section>")[0])
    with session_scope(crashed.engine) as session:  # its process is gone (as after kill -9)
        session.exec(
            update(ExperimentRun)
            .where(ExperimentRun.experiment == RUNNING)
            .values(pid_started="gone")
        )
    page = c.get("/").text
    assert RUNNING not in page.split('id="running"')[1].split("</section>")[0]
    recent = page.split('id="recent"')[1].split("</section>")[0]
    row = _text(recent.split(f'data-name="{RUNNING}"')[1].split("</tr>")[0])
    assert "crashed" in row and "running" not in row
    stats = _text(page.split('id="stats"')[1].split("</section>")[0])
    assert "1 active" not in stats and "4 runs" in stats


def test_a_crashed_runs_stored_generations_are_counted_in_recent_runs(tmp_path):
    """Newcomers' M11: a run killed at 144 of 432 generations read `crashed – – – –` in
    Recent runs while `status` said "144 generations stored": a summary was counted only
    for runs stored as ended, and a crashed run stays stored as running (nobody recorded
    its end). Counted once it is found crashed, on the home page and the run's API."""
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.storage.repository import get_experiment, save_generations
    from tests.support.review_db import make_configs, make_suite

    crashed = build_monitor_db(f"sqlite:///{tmp_path / 'c.db'}")
    suite, config = make_suite(4), make_configs()[0]
    with session_scope(crashed.engine) as session:
        experiment = get_experiment(session, RUNNING).id
        failed = [
            GenerationRecord(WorkItem(config, case, suite.name, 1), "host-a", 1, error="x")
            for case in suite.cases[:3]
        ]
        save_generations(session, experiment, failed)
        session.exec(  # its process is gone (as after kill -9)
            update(ExperimentRun)
            .where(ExperimentRun.experiment == RUNNING)
            .values(pid_started="gone")
        )
    c = keyed_client(create_app(crashed.engine, control=Control()))
    recent = c.get("/").text.split('id="recent"')[1].split("</section>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", recent.split(f'data-name="{RUNNING}"')[1], re.S)
    assert cells[3] == "crashed" and cells[6] == "3", cells[:8]
    assert c.get(f"/api/runs/{RUNNING}").json()["summary"]["generations"] == 3


@pytest.mark.parametrize("end", ["interrupted", "crashed"])
def test_a_run_that_ended_with_nothing_scored_says_so_on_its_page_and_ranks_nothing(tmp_path, end):
    """Newcomers' ncmon-2: a run stopped (SIGTERM) or killed (-9) mid-generate, nothing
    scored, read on its live page as a leaderboard #1..#4 of configs with no metric and
    p95 `–` (363 latencies stored), while `status`, `show` and its summary page said
    `No results for NAME yet: ... none scored ...; resume with: ...` and ranked nothing.
    Its page says that line now, and ranks nothing."""
    from evaluation.backends.base import GenerationResult
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.storage.repository import get_experiment, save_generations
    from tests.support.review_db import make_configs, make_suite

    ended = build_monitor_db(f"sqlite:///{tmp_path / 'e.db'}")
    suite, configs = make_suite(4), make_configs()
    with session_scope(ended.engine) as session:
        experiment = get_experiment(session, RUNNING).id
        done = [
            GenerationRecord(
                WorkItem(config, case, suite.name, 0),
                "host-a",
                1,
                GenerationResult("out", "stop", 0.5, None),
            )
            for config in configs
            for case in suite.cases[:2]
        ]
        save_generations(session, experiment, done)
        if end == "interrupted":
            end_run(session, RUNNING, "interrupted", RunProcess.current(), reason="a signal")
        else:  # its process is gone (as after kill -9)
            session.exec(
                update(ExperimentRun)
                .where(ExperimentRun.experiment == RUNNING)
                .values(pid_started="gone")
            )
    c = keyed_client(create_app(ended.engine, control=Control()))
    page = c.get(f"/e/{RUNNING}/live").text
    assert 'id="no-results"' in page, _text(page)
    said = html.unescape(page.split('id="no-results">')[1].split("</p>")[0])
    assert said.startswith(
        f"No results for '{RUNNING}' yet: {len(done)} generations stored, none scored "
        f"(status {end}); resume with: evalflow run"
    ), said
    assert 'id="leaderboard"' not in page and "#1" not in page


def test_start_is_guarded_and_passes_the_parameters(client):
    c, control = client
    token = _csrf(c.get("/").text)
    form = {"deployment": "evaluate/on-demand", "spec_path": "s.yaml", "level": "smoke"}
    assert c.post("/actions/start", data=form, headers={"Origin": ORIGIN}).status_code == 403
    evil = c.post("/actions/start", data={**form, "csrf": token}, headers={"Origin": "http://evil"})
    assert evil.status_code == 403 and not control.started
    ok = c.post(
        "/actions/start",
        data={**form, "csrf": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and "started=brave-otter" in ok.headers["location"]
    assert "Started flow run <strong>brave-otter" in c.get(ok.headers["location"]).text
    forged = c.get("/?started=ALL+RUNS+DELETED&seal=0").text + c.get("/?started=x").text
    assert "Started flow run" not in forged
    assert control.started == [("evaluate/on-demand", {"spec_path": "s.yaml", "level": "smoke"})]
    missing = c.post(
        "/actions/start",
        data={**form, "deployment": "evaluate/missing", "csrf": token},
        headers={"Origin": ORIGIN},
    )
    assert missing.status_code == 404 and "is not registered" in missing.text


def test_start_and_cancel_need_the_key_the_printed_link_sets(client):
    """ncedge-E1: any local user could GET the page, read its token and start or cancel
    runs (the Origin, Host and token checks pass for any local process). A browser
    without the server's key (the cookie the link `evalflow view` prints sets) is
    offered no button and served no token, and its writes are refused."""
    c, control = client
    token = _csrf(c.get("/").text)
    other = TestClient(c.app)  # another local user: the pages, not the link
    page = other.get("/").text
    assert 'id="start-form"' not in page and 'name="csrf"' not in page
    assert "open the link <code>evalflow view</code> printed" in page
    form = {"deployment": "evaluate/on-demand", "spec_path": "s.yaml", "csrf": token}
    for action, fields in (("start", form), ("cancel", {"experiment": RUNNING, "csrf": token})):
        refused = other.post(f"/actions/{action}", data=fields, headers={"Origin": ORIGIN})
        assert refused.status_code == 403 and "does not hold the server" in refused.text
    assert "Cancel this run" not in other.get(f"/e/{RUNNING}/live").text
    assert control.started == [] and control.cancelled == []
    assert other.get("/?key=guessed").status_code == 403
    other.get(f"/?key={c.app.state.key}", follow_redirects=False)  # the printed link
    assert 'id="start-form"' in other.get("/").text


def test_a_started_run_whose_flow_fails_before_its_claim_is_said_failed(client):
    """Newcomers' M10: a spec path the worker cannot read fails the flow before it claims
    its experiment, so no section lists it; the page that said "Started flow run ..."
    follows that flow run's state and says it failed, and why."""
    c, control = client
    token = _csrf(c.get("/").text)
    form = {"deployment": "evaluate/on-demand", "spec_path": "/nonexistent/spec.yaml"}
    started = c.post(
        "/actions/start",
        data={**form, "csrf": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    page = c.get(started.headers["location"]).text
    url = html.unescape(re.search(r'data-state-url="([^"]+)"', page).group(1))
    assert url.startswith("/api/started/id-1?")
    control.states["id-1"] = FlowRunState("SCHEDULED", "Scheduled")
    assert c.get(url).json() == {
        "state": "SCHEDULED",
        "ended": False,
        "words": "Started flow run brave-otter: waiting for a worker to pick it up.",
    }
    control.states["id-1"] = FlowRunState("SCHEDULED", "Late")
    assert "no worker has picked it up" in c.get(url).json()["words"]
    reason = "Flow run encountered an exception: SpecError: /nonexistent/spec.yaml: cannot read"
    control.states["id-1"] = FlowRunState("FAILED", "Failed", reason + "\n the spec file")
    failed = c.get(url).json()
    assert failed["ended"] is True and failed["state"] == "FAILED"
    assert failed["words"] == f"Flow run brave-otter ended Failed: {reason} the spec file"
    control.states.clear()  # the server does not answer: said so, not "failed"
    assert "cannot be read from the Prefect server" in c.get(url).json()["words"]
    # only a flow run this page started: the seal signs its name and its id
    forged = url.replace("id-1", "id-2")
    assert c.get(forged).status_code == 404
    assert c.get("/api/started/id-1?name=brave-otter&seal=0").status_code == 404
    assert "data-state-url" not in c.get("/?started=brave-otter&run=id-2&seal=0").text


def test_the_form_is_told_the_registered_evaluate_deployments(client, db):
    c, _ = client
    page = c.get("/").text
    assert 'data-url="/api/deployments"' in page and '<datalist id="deployments">' in page
    assert c.get("/api/deployments").json() == {
        "default": "evaluate/on-demand",
        "evaluate": ["evaluate/on-demand-served"],
    }
    without = TestClient(create_app(db.engine, control=None))
    assert without.get("/api/deployments").status_code == 404


def test_cancel_asks_for_the_runs_flow_run(client, db):
    c, control = client
    token = _csrf(c.get("/").text)
    form = {"experiment": RUNNING, "csrf": token}
    no_flow_run = c.post("/actions/cancel", data=form, headers={"Origin": ORIGIN})
    assert no_flow_run.status_code == 409 and "outside Prefect" in no_flow_run.text
    assert 'id="cancel"' not in c.get(f"/e/{RUNNING}/live").text
    start_running(db.engine, flow_run_id="tmp-1")  # a temporary server's: not ours
    assert 'id="cancel"' not in c.get(f"/e/{RUNNING}/live").text
    start_running(db.engine, flow_run_id="fr-1")
    assert 'id="cancel"' in c.get(f"/e/{RUNNING}/live").text
    done = c.post("/actions/cancel", data=form, headers={"Referer": ORIGIN + "/e/x/live"},
                  follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and control.cancelled == ["fr-1"]
    ended = c.post("/actions/cancel", data={**form, "experiment": NIGHTS[0]},
                   headers={"Origin": ORIGIN})  # fmt: skip
    assert ended.status_code == 409 and "not running" in ended.text


def test_a_run_cancelled_from_the_page_reads_cancelling_not_crashed_while_it_ends(client, db):
    # A newcomer polled `evalflow status` after the page's Cancel: "crashed (process ...
    # is gone)" for seconds (Prefect's runner ends the process before the flow's hook
    # records "cancelled"), and evalflow_runs{status="crashed"} could scrape it.
    from datetime import timedelta

    from evaluation.observability._collector import _experiment_metric
    from evaluation.storage.models import utcnow

    c, control = client
    start_running(db.engine, flow_run_id="fr-1")
    form = {"experiment": RUNNING, "csrf": _csrf(c.get("/").text)}
    assert c.post("/actions/cancel", data=form, headers={"Origin": ORIGIN}).status_code == 200

    def gone(**values) -> tuple[str, dict[str, float]]:
        with session_scope(db.engine) as session:  # the runner killed its process
            session.exec(
                update(ExperimentRun)
                .where(ExperimentRun.experiment == RUNNING)
                .values(pid_started="gone", **values)
            )
        with session_scope(db.engine) as session:
            gauge = {s.labels["status"]: s.value for s in _experiment_metric(session).samples}
        return status_text(c.get(f"/api/runs/{RUNNING}").json()), gauge

    try:
        cancelling, gauge = gone()
        # a cancel that never ends (its runner gone too) is a crash after the grace
        long_ago = utcnow() - timedelta(seconds=CANCEL_GRACE_S + 60)
        text, later = gone(cancel_requested_at=long_ago)
    finally:
        start_running(db.engine, flow_run_id="fr-1")  # alive again, for the next tests
    assert control.cancelled == ["fr-1"]
    assert cancelling.startswith(f"{RUNNING}: cancelling") and "crashed" not in cancelling
    assert "crashed" not in gauge and gauge["cancelling"] == 1
    assert text.startswith(f"{RUNNING}: crashed") and later["crashed"] == 1


def test_status_text_while_running_and_after(client, db):
    c, _ = client
    running = status_text(c.get(f"/api/runs/{RUNNING}").json())
    assert f"{RUNNING}: running, stage generate" in running
    assert "ETA" in running and "in flight: host-a 2/2 slots" in running
    assert "TimeoutError: no answer in 60 s" in running
    ended = status_text(c.get(f"/api/runs/{NIGHTS[-1]}").json())
    assert f"{NIGHTS[-1]}: completed" in ended and "13 generations, 1 failed" in ended
    assert FAILURE in ended


def test_status_after_generation_shows_nothing_in_flight_and_one_time_zone(client, db):
    """In the compare stage `status` still said "in flight: slowbox 1/2 slots", and its
    time read "2026-11-25T19:19:01+00:00 UTC" (#47)."""
    c, _ = client
    set_stage(db.engine, RUNNING, "compare")
    try:
        facts = c.get(f"/api/runs/{RUNNING}").json()
    finally:  # the module's database is shared: later tests read RUNNING generating
        start_running(db.engine)
    assert facts["live"]["in_flight"] == {}
    text = status_text(facts)
    assert "stage compare" in text and "in flight" not in text
    stamp = re.search(r"\(updated (.*)\)", text).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", stamp), stamp


def test_a_sparkline_draws_only_finite_points():
    drawn = sparkline([0.1, None, float("nan"), 0.4], title="<s>")
    assert 'data-points="2"' in drawn and "&lt;s&gt;" in drawn
    assert "<title>&lt;s&gt;: 2 of 4 runs drawn</title>" in drawn  # the gaps said (ncmon-6)
    assert "<title>s</title>" in sparkline([0.1, 0.4], title="s")
    assert 'data-points="0"' in sparkline([None])


def test_the_home_sections_mark_what_the_simulated_backend_made(tmp_path):
    """Newcomer ncmon-6: a simulated series, the runs over time and a simulated host read
    as real ones on the home page, beside real runs (Recent runs did mark them)."""
    engine = build_monitor_db(f"sqlite:///{tmp_path / 'm.db'}").engine

    def sections(*simulated: str) -> dict[str, str]:
        with session_scope(engine) as session:
            session.exec(update(Experiment).values(simulated=Experiment.name.in_(simulated)))
        page = TestClient(create_app(engine)).get("/").text
        return {
            "series": _text(page.split(f'data-series="{SERIES}"')[1].split("</tr>")[0]),
            "over-time": _text(page.split('id="over-time"')[1].split("</h2>")[0]),
            "host-b": _text(page.split('data-host="host-b"')[1].split("</tr>")[0]),
            "host-a": _text(page.split('data-host="host-a"')[1].split("</tr>")[0]),
        }

    real = sections()
    assert not any("SIMULATED" in text for text in real.values())
    some = sections(NIGHTS[0])
    assert "SIMULATED 1 of the 3 runs shown" in some["series"]
    assert "last 3 runs, 1 of them SIMULATED" in some["over-time"]
    assert "SIMULATED" not in some["host-b"]  # its run (the last night) is real
    every = sections(*NIGHTS)
    assert "SIMULATED" in every["series"] and "runs shown" not in every["series"]
    assert "3 of them SIMULATED" in every["over-time"]
    assert "SIMULATED" in every["host-b"]  # only simulated runs on it
    assert "SIMULATED" not in every["host-a"]  # the real run going on is on it


def test_a_run_that_ended_leaves_running(db, client):
    c, _ = client
    recent = c.get("/").text.split('id="recent"')[1]  # the page's stored sections kept
    assert 'class="status-running"' in recent.split(f'data-name="{RUNNING}"')[1].split("</tr>")[0]
    with session_scope(db.engine) as session:
        end_run(session, RUNNING, "completed", RunProcess.current())
        assert session.exec(select(Experiment.status).where(Experiment.name == RUNNING)).one()
    assert c.get("/api/live").json() == {"running": []}
    recent = c.get("/").text.split('id="recent"')[1]  # the runs changed: read again
    row = recent.split(f'data-name="{RUNNING}"')[1].split("</tr>")[0]
    assert 'class="status-completed"' in row
    start_running(db.engine)


def test_evalflow_status_on_a_database_made_before_the_monitor(tmp_path, capsys):
    """Its tables are created on first open (docs/monitor.md): nothing runs there."""
    from sqlalchemy import text

    from evaluation.storage.db import make_engine
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with make_engine(url).begin() as connection:
        for table in ("run_live", "run_summaries"):
            connection.execute(text(f"DROP TABLE {table}"))
    assert main(["--database", url, "status"]) == 0
    assert "Nothing runs now" in capsys.readouterr().out


def test_evalflow_status_lists_the_running_ones_and_a_named_one(db, capsys):
    from flows.cli import main

    assert main(["--database", db.url, "status"]) == 0
    out = capsys.readouterr().out
    assert f"{RUNNING}: running, stage generate" in out and NIGHTS[0] not in out
    assert main(["--database", db.url, "status", NIGHTS[0]]) == 0
    out = capsys.readouterr().out
    assert f"{NIGHTS[0]}: completed" in out and "Leaderboard" in out


def test_evalflow_status_fits_a_known_width(db, capsys, monkeypatch):
    """During the newcomer's host failure `status` at COLUMNS=80 printed its failure
    reasons 111 wide (a reason is kept to 100 characters): they wrap at the width where
    it is known, their words whole; into a file or a capture each stays one line."""
    from evaluation.monitor import status_text
    from flows.cli import main

    reason = ("BackendUnavailable: no host serving smollm2-135m-instruct was up (llama-cpp: "
              "connection refused at 127…")  # fmt: skip
    live = {
        "stage": "generate", "done": 9, "total": 20, "percent": 45.0, "per_s": 0.5,
        "eta_s": None, "failed": 11, "updated_at": "2026-11-27T13:40:00",
        "in_flight": {}, "slots": {}, "failures": {reason: 11}, "gpu": [],
    }  # fmt: skip
    text = status_text({"name": RUNNING, "status": "running", "live": live})
    monkeypatch.setattr("evaluation.monitor.status_text", lambda facts: text, raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--database", db.url, "status", RUNNING]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80 and " ".join(out.split()) == " ".join(text.split())
    monkeypatch.delenv("COLUMNS")
    assert main(["--database", db.url, "status", RUNNING]) == 0
    assert capsys.readouterr().out == text + "\n"


def test_status_says_an_eta_long_passed_with_nothing_changed_as_such():
    # A hung host: `status` said "ETA 17 s" 2 min 20 s after that ETA was given.
    from datetime import UTC, datetime, timedelta

    given = datetime(2026, 11, 26, 7, 56, 14, tzinfo=UTC)
    live = {
        "stage": "generate", "done": 2, "total": 4, "percent": 50.0, "per_s": 0.2,
        "eta_s": 17.0, "failed": 0, "updated_at": given.isoformat(),
        "in_flight": {"llama-cpp": 1}, "slots": {"llama-cpp": 1}, "failures": {}, "gpu": [],
    }  # fmt: skip
    facts = {"name": "my-first", "status": "running", "live": live}
    assert "ETA 7 s" in status_text(facts, now=given + timedelta(seconds=10))  # counted down
    soon = status_text(facts, now=given + timedelta(seconds=40))
    assert "due now" in soon  # past the ETA, within its grace
    assert "12.0/min" in soon and "0.2/s" not in soon  # as `run` says it, not "0.2/s"
    late = status_text(facts, now=given + timedelta(seconds=140))
    assert "ETA 17 s" not in late
    assert "nothing stored or sent for 2 min 20 s, past the ETA of 17 s given then" in late
    assert "in flight: llama-cpp 1/1 slots" in late


def test_status_counts_the_eta_down_from_when_it_was_given_and_says_its_time_of_day():
    """During a hang `status` printed "ETA 3 min 30 s" 70 s after that ETA was given, as
    if it were 3 min 30 s from now; it counts down and names the time it points at."""
    from datetime import UTC, datetime, timedelta

    from evaluation.monitor._home import eta_clock

    given = datetime(2026, 11, 26, 23, 39, 50, tzinfo=UTC)
    live = {
        "stage": "generate", "done": 8, "total": 36, "percent": 22.0, "per_s": 0.128,
        "eta_s": 210.0, "failed": 0, "updated_at": given.isoformat(),
        "eta_clock": eta_clock(given, 210.0),
        "in_flight": {}, "slots": {}, "failures": {}, "gpu": [],
    }  # fmt: skip
    facts = {"name": "real-n6", "status": "running", "live": live}
    later = status_text(facts, now=given + timedelta(seconds=70))
    assert "ETA 2 min 20 s (23:43:20 UTC)" in later
    assert "due now (23:43:20 UTC)" in status_text(facts, now=given + timedelta(seconds=225))
    assert eta_clock(given.replace(tzinfo=None), 2 * 86400.0) == "2026-11-28 23:39 UTC"
