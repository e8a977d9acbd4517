"""A newcomer's series on the simulated backend (benchmarks/suites/qa-short, 2 models ×
2 temperatures): six identical nights, a degraded host's night (``?degrade=0.5``) that
alarms, the last good night accepted, a normal night, a slightly degraded one, then the
same collapse again. The second collapse alarms as the first did: an alarmed night is a
known change, kept out of the later nights' reference and spread. Its tokens/s repeat
every night up to float rounding: no change, "ok", in `trends` and on the monitor."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from evaluation.series import Night, StreamVerdict, figure, trends_text, watch_series
from evaluation.series._render import _stream_line
from evaluation.storage.baselines import accept_baseline
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Generation, Score, ScoreDetail
from evaluation.storage.repository import get_experiment
from evaluation.view.app import create_app
from flows.cli import main
from tests.support.series_db import add_simulated_night

SUITE = Path(__file__).resolve().parents[3] / "benchmarks" / "suites" / "qa-short.jsonl"
QUALITY = ("exact_match", "contains")


def _spec(folder: Path, name: str, url: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "wt",
                "suite": str(SUITE),
                "models": ["sim-small:1b", "sim-large:8b"],
                "grid": {"temperature": [0.0, 0.7], "num_predict": [128], "seed": [42]},
                "metrics": list(QUALITY),
                "hosts": [{"name": "sim", "url": url, "slots": 4, "kind": "simulated"}],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """The watch after wt-n6, wt-n7, wt-n8 and wt-n10, as the newcomer ran them, and the
    monitor's series page after wt-n10."""
    folder = tmp_path_factory.mktemp("wt")
    normal = _spec(folder, "wt", "simulated://local")
    collapse = _spec(folder, "wt-degraded", "simulated://local?degrade=0.5")
    slight = _spec(folder, "wt-d01", "simulated://local?degrade=0.1")
    engine = make_engine("sqlite://")
    seen = {}
    nights = [normal] * 6 + [collapse, normal, slight, collapse]
    for night, spec in enumerate(nights, start=1):
        name = f"wt-n{night}"
        with session_scope(engine) as session:
            add_simulated_night(session, spec, name, series="wt")
        if night == 7:
            with session_scope(engine) as session:
                accept_baseline(session, "wt-n6")  # the last good run
        if night in (6, 7, 8, 10):
            with session_scope(engine) as session:
                seen[name] = watch_series(session, "wt")
    seen["page"] = TestClient(create_app(engine)).get("/series/wt").text
    with session_scope(engine) as session:  # a smoke run after the collapse: 3 cases
        add_simulated_night(session, normal, "wt-s11", series="wt")
        _keep_cases(session, "wt-s11", 3)
    with session_scope(engine) as session:
        seen["wt-s11"] = watch_series(session, "wt")
    return seen


def _keep_cases(session, name: str, n: int) -> None:
    """Run ``name`` as a smoke run of its first ``n`` cases (``--limit n``) stores it."""
    run = get_experiment(session, name)
    rows = [
        r[0] for r in session.exec(select(Generation).where(Generation.experiment_id == run.id))
    ]
    keep = sorted({r.case_uid for r in rows})[:n]
    dropped = [r.id for r in rows if r.case_uid not in keep]
    for table in (ScoreDetail, Score):
        session.exec(delete(table).where(table.generation_id.in_(dropped)))
    session.exec(delete(Generation).where(Generation.id.in_(dropped)))


def _quality(watch):
    return [s for s in watch.streams if s.metric in QUALITY]


def _mine(watch, stream):
    (found,) = [s for s in watch.streams if (s.config, s.metric) == (stream.config, stream.metric)]
    return found


def test_the_same_collapse_a_second_time_alarms_again(watched):
    first, second = watched["wt-n7"], watched["wt-n10"]
    assert {(s.label, s.metric) for s in first.alarms} == {
        (s.label, s.metric) for s in _quality(first)
    }
    # newcomer F7: wt-n7 stayed in the reference, its outlier widened wt-n10's interval
    # fourfold ([-1.052, +0.095]) and nothing alarmed: `trends --fail-on-alarm` exited 0
    assert {(s.label, s.metric) for s in second.alarms} == {
        (s.label, s.metric) for s in _quality(second)
    }
    for stream in _quality(second):
        before = _mine(first, stream)
        width = stream.last.change_high - stream.last.change_low
        assert width < 2 * (before.last.change_high - before.last.change_low)
        assert stream.last.change_high < 0
    assert "ALARM on wt-n10" in trends_text(second)


def test_a_night_back_at_the_old_level_is_ok_and_the_note_does_not_push_the_bad_level(watched):
    back = watched["wt-n8"]
    assert not back.alarms
    for stream in _quality(back):
        assert stream.last.evidence == 0 and stream.last.change == pytest.approx(0, abs=0.02)
    note = next(n for n in back.notes if "accepted baseline wt-n6" in n)
    assert "accept wt-n7 or a later run to take its level" not in note
    assert "compared with the level before it" in note


def test_tokens_per_s_that_repeat_up_to_float_rounding_are_no_change(watched):
    # newcomer F4: sim-large:8b t=0's tokens/s moved by -1.23e-09 on wt-n7 and got
    # p = 0.024, evidence 1.89/3.52, "watch"
    for name in ("wt-n7", "wt-n10"):
        for stream in watched[name].streams:
            if stream.metric != "tokens_per_s":
                continue
            last = stream.last
            assert (last.change, last.evidence, last.p) == (0.0, 0.0, 0.5)
            assert stream.status == "ok"
            assert "change +0% [+0%, +0%]  one-sided p 0.5  evidence 0.00/3.52  ok" in (
                _stream_line(stream, 3)
            )


def test_trends_and_the_monitor_page_show_one_status_and_one_change_per_stream(watched):
    # newcomer F3: `trends` said "watch" at evidence 0.01/3.52 where the page said "ok",
    # and the page printed the change as "-1.72e-09 [-6.19e-09, +2.74e-09]"
    watch, page = watched["wt-n10"], watched["page"]
    text = trends_text(watch)
    for stream in watch.streams:
        tag = f'data-config="{stream.config}" data-metric="{stream.metric}" data-status="'
        assert f"{tag}{stream.status}" in page
        article = page.split(tag)[1].split("</article>")[0]
        last = stream.last
        assert f"change {figure(last.change, stream.metric, change=True)}" in article
        lines = text.splitlines()
        block = lines[lines.index(f"{stream.label}  (since wt-n1, 10 runs)") :]
        line = next(line for line in block if line.startswith(f"  {stream.metric} "))
        assert line.split("  ")[-1].startswith(stream.status)
        figures = article.split("<p>last ")[1].split("· p =")[0]  # the value, the change
        assert "e-0" not in figures and "e-1" not in figures


def test_evidence_below_half_the_threshold_is_ok_on_every_view():
    # newcomer F1: "evidence 0.01/3.52 ... watch"
    night = Night(
        "n7",
        121.0,
        change=-1e-3,
        change_low=-2e-3,
        change_high=0.0,
        z=0.76,
        p=0.22,
        evidence=0.01,
        judged=True,
    )
    stream = StreamVerdict("c", "m t=0", "tokens_per_s", True, (night,), 3.52, "n1")
    assert stream.status == "ok" and _stream_line(stream, 3).endswith("evidence 0.01/3.52  ok")
    half = StreamVerdict(
        "c", "m t=0", "tokens_per_s", True, (replace(night, evidence=1.76),), 3.52, "n1"
    )
    assert half.status == "watch"


def test_identical_greedy_nights_say_nothing_of_their_outputs(watched):
    assert not [n for n in watched["wt-n6"].notes if "greedy outputs" in n]


def _greedy_notes(watch):
    return [n for n in watch.notes if "greedy outputs" in n]


def test_greedy_outputs_are_compared_with_a_normal_full_night_not_an_alarmed_or_smoke_one(watched):
    # the degraded host's night changed its answers and alarmed: named, against wt-n6
    assert _greedy_notes(watched["wt-n7"])
    assert all("changed since wt-n6" in n for n in _greedy_notes(watched["wt-n7"]))
    # RECHECK F8: the night back to normal said its outputs "changed since wt-n7" (the
    # alarmed night), and a smoke run "2 of 3 greedy outputs ... changed since" one
    assert not _greedy_notes(watched["wt-n8"])
    assert not _greedy_notes(watched["wt-s11"])
    # the repeat collapse is compared with wt-n9, the last night that did not alarm
    assert all("changed since wt-n9" in n for n in _greedy_notes(watched["wt-n10"]))


def test_greedy_outputs_that_all_changed_are_named_though_no_digest_says_so(tmp_path):
    # newcomer F8: another model served under the same name by an OpenAI-compatible
    # server changed 36 of 36 greedy outputs; only its speed alarmed, nothing said why
    spec = _spec(tmp_path, "wt", "simulated://local")
    engine = make_engine("sqlite://")
    for name in ("swap-n1", "swap-n2"):
        with session_scope(engine) as session:
            add_simulated_night(session, spec, name, series="swap")
    with session_scope(engine) as session:
        second = get_experiment(session, "swap-n2")
        for row in session.exec(select(Generation).where(Generation.experiment_id == second.id)):
            row[0].output = f"Answer: {row[0].output}"  # what another model would say
    with session_scope(engine) as session:
        watch = watch_series(session, "swap")
    notes = [n for n in watch.notes if "greedy outputs" in n]
    assert len(notes) == 2  # the two configs at temperature 0, not those at 0.7
    assert notes[0].startswith(
        "36 of 36 greedy outputs (temperature 0) of sim-small:1b t=0 changed since swap-n1"
    )
    assert f"note: {notes[0]}" in trends_text(watch)


@pytest.fixture(scope="module")
def accepted(tmp_path_factory):
    """Five normal nights, a collapse (ALARM), a normal night, the same collapse twice:
    the watch as it reads with nothing accepted, with the good night between the
    outages (ac-n7) accepted, and, accepted so, after the first repeat (ac-n8) alone."""
    folder = tmp_path_factory.mktemp("ac")
    normal = _spec(folder, "wt", "simulated://local")
    collapse = _spec(folder, "wt-degraded", "simulated://local?degrade=0.5")
    engine = make_engine("sqlite://")
    seen = {}
    for night, spec in enumerate([normal] * 5 + [collapse, normal, collapse, collapse], start=1):
        with session_scope(engine) as session:
            add_simulated_night(session, spec, f"ac-n{night}", series="ac")
        if night == 8:
            with session_scope(engine) as session:
                accept_baseline(session, "ac-n7")
            with session_scope(engine) as session:
                seen["ac-n8"] = watch_series(session, "ac")
    with session_scope(engine) as session:
        seen["accepted"] = watch_series(session, "ac")
        get_experiment(session, "ac-n7").accepted_baseline = False
    with session_scope(engine) as session:
        seen["none"] = watch_series(session, "ac")
    return seen


def test_accepting_the_good_run_after_a_fix_keeps_a_repeat_of_the_outage_alarmed(accepted):
    # recheck F7: accepting ac-n7 (a normal run after the fix) restarted every alarmed
    # stream there; the same collapse on ac-n8 read "learning ... not judged yet", rc 0
    watch = accepted["ac-n8"]
    assert {(s.label, s.metric) for s in watch.alarms} == {
        (s.label, s.metric) for s in _quality(watch)
    }
    assert all(s.segment_start == "ac-n1" for s in watch.streams)
    assert not any("learning" in line for line in trends_text(watch).splitlines())
    assert "ALARM on ac-n8" in trends_text(watch)


def test_accepting_the_good_night_between_outages_leaves_the_later_alarms_standing(accepted):
    # recheck item 1: accepting ac-n7 turned ac-n8 and ac-n9 into learning nights, ac-n8's
    # collapse entered the reference (change -0.194 for -0.389) and the alarm was gone
    watch, plain = accepted["accepted"], accepted["none"]
    for stream in _quality(watch):
        before = _mine(plain, stream)
        assert stream.alarm_nights == before.alarm_nights == ("ac-n6", "ac-n8", "ac-n9")
        assert stream.nights == before.nights
    assert "ALARM on ac-n9" in trends_text(watch)
    assert any("accepted baseline ac-n7 lies before the alarm on ac-n8" in n for n in watch.notes)


def test_a_simulated_hosts_noise_gives_the_same_configs_new_draws_the_watch_compares(tmp_path):
    """Newcomers' W3: the simulated backend answers an unchanged spec identically every
    night (every change +0.000), and a new `seed` is a new config the watch never
    compares, so its claim (no alarm on night-to-night noise) could not be tried. A
    host's `?noise=N` draws the same configs afresh on the same cases."""
    engine = make_engine("sqlite://")
    nights = [f"nz-n{n}" for n in range(1, 5)]
    for n, name in enumerate(nights, start=1):
        spec = _spec(tmp_path, f"nz{n}", f"simulated://local?noise={n}")
        with session_scope(engine) as session:
            add_simulated_night(session, spec, name, series="nz")
    with session_scope(engine) as session:
        watch = watch_series(session, "nz")
    assert len({s.config for s in watch.streams}) == 4 and not watch.alarms  # 2 models × 2 t
    assert all([x.experiment for x in s.nights] == nights for s in watch.streams)
    values = {
        s.config: [x.value for x in s.nights] for s in watch.streams if s.metric == "contains"
    }
    assert all(len(set(v)) > 1 for v in values.values())  # new draws each night
    healthy = _spec(tmp_path, "plain", "simulated://local")
    with session_scope(engine) as session:  # without noise: the draws as before, every time
        add_simulated_night(session, healthy, "nz-a", series="plain")
        add_simulated_night(session, healthy, "nz-b", series="plain")
        again = watch_series(session, "plain")
    assert all(len({x.value for x in s.nights}) == 1 for s in again.streams)


DEMO = Path(__file__).resolve().parents[3] / "benchmarks" / "sweeps" / "demo-simulated.yaml"


def _demo(folder: Path, name: str, url: str) -> Path:
    """docs/trends.md's "Try it" spec (12 configs) on a host at ``url``."""
    spec = yaml.safe_load(DEMO.read_text())
    spec["suite"] = str(SUITE)
    spec["hosts"][0]["url"] = url
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _accepts(folder: Path, sixth: str) -> tuple[list[str], list[str]]:
    """Five normal nights, one on ``?degrade=0.3`` (nd-n05), a sixth on ``sixth``: the
    lines of `baseline accept nd-n05`, then of `baseline accept nd-n06`."""
    normal = _demo(folder, "nd", "simulated://local")
    url = f"sqlite:///{folder / 'nd.db'}"
    urls = ["simulated://local"] * 5 + ["simulated://local?degrade=0.3", sixth]
    for night, host in enumerate(urls):
        spec = normal if host == urls[0] else _demo(folder, f"nd{night}", host)
        with session_scope(make_engine(url)) as session:
            add_simulated_night(session, spec, f"nd-n{night:02d}", series="nd")
    return [_accept_lines(url, f"nd-n0{night}") for night in (5, 6)]


def _accept_lines(url: str, run: str) -> list[str]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--database", url, "baseline", "accept", run]) == 0
    return out.getvalue().splitlines()


def _counted(lines: list[str], start: str) -> int:
    """How many streams the accept's line beginning ``start`` names (0: none)."""
    found = [line for line in lines if line.startswith(start)]
    return int(found[0].removeprefix(start).split()[0]) if found else 0


def test_a_run_back_at_the_level_before_an_accepted_one_night_drop_goes_back_for_every_stream(
    tmp_path,
):
    # recheck R3: nd-n05 degraded and accepted (23 streams restarted), nd-n06 identical
    # to nd-n00…nd-n04 accepted: 7 streams went back, the 16 with the larger drops
    # restarted (moved while learning): the drop's evidence, less k, carried on into
    # nd-n06 (sim-small:1b t=0 concise 3.43 -> 2.68 of h = 4.25, past half)
    taken, back = _accepts(tmp_path, "simulated://local")
    restarted = _counted(taken, "  restarted at nd-n05: ")
    assert restarted == 23
    assert _counted(back, "  back at nd-n06: ") == restarted
    assert not any(line.startswith("  restarted at") for line in back)
    assert not any(line.startswith("  learning again") for line in back)


def test_a_run_elsewhere_than_the_level_before_an_accepted_drop_still_restarts(tmp_path):
    # a sixth night worse again (?degrade=0.6): neither the accepted level nor the one
    # before it, every stream the drop restarted restarts there
    taken, again = _accepts(tmp_path, "simulated://local?degrade=0.6")
    restarted = _counted(taken, "  restarted at nd-n05: ")
    assert restarted == 23
    assert not any(line.startswith("  back at") for line in again)
    assert _counted(again, "  restarted at nd-n06: ") >= restarted
