"""N6: a tokens/s alarm caused by the machine's load alone. On a loaded 2-core box a
night read -40% tokens/s with the model and server unchanged, and `trends
--fail-on-alarm` exited 1. Runs whose host is on their own machine record its load; a
speed alarm that load explains is set down to watch, and says so."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from evaluation.series import watch_series
from evaluation.series._render import trends_text
from evaluation.series._what_ran import machine_load
from evaluation.spec import HostSpec
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import get_experiment
from tests.support.series_db import STEADY, add_nights, steady_speeds

NIGHTS = 8


def _speed(last_load: float | None, *, slower: float = 0.6, url: str = "sqlite://"):
    """Eight nights of one config at ~17 tokens/s on a 2-CPU machine at load 1.1, the
    last at ``slower`` times that speed under load ``last_load`` (None: not recorded, a
    host on another machine): the watch and its tokens/s stream."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        names = add_nights(session, NIGHTS, series="box", configs=(STEADY,))
        steady_speeds(session)
        last = get_experiment(session, names[-1]).id
        session.execute(
            text(
                "UPDATE generations SET tokens_per_s = tokens_per_s * :f WHERE experiment_id = :e"
            ),
            {"f": slower, "e": last},
        )
        session.execute(text("UPDATE series_run_models SET machine_load = 1.1, machine_cpus = 2"))
        session.execute(
            text("UPDATE series_run_models SET machine_load = :l WHERE experiment = :e"),
            {"l": last_load, "e": names[-1]},
        )
    with session_scope(engine) as session:
        watch = watch_series(session, "box")
    (speed,) = [s for s in watch.streams if s.metric == "tokens_per_s"]
    return names, watch, speed


def test_a_speed_alarm_the_machines_load_explains_is_set_down_to_watch():
    names, watch, speed = _speed(12.3)
    night = speed.last
    assert night.change == pytest.approx(-0.4, abs=0.02) and night.p < 1e-6
    assert not night.alarm and watch.alarms == ()  # --fail-on-alarm passes
    assert night.load == (
        "machine load 12.3 vs 1.1 in the reference nights, on 2 CPUs (the load alone "
        "slows a run by up to 84%)"
    )
    assert speed.status == "watch"
    assert speed.state == f"watch ({night.load}: its alarm set down)"
    text = trends_text(watch)
    assert f"watch ({night.load}: its alarm set down)" in text
    assert (
        f"note: tokens_per_s of m:1b t=0 on {names[-1]}: an alarm on speed set down to "
        f"watch, {night.load}; it counts as no alarm"
    ) in text
    assert f"no alarm on {names[-1]}." in text


@pytest.mark.parametrize(
    "load",
    [
        1.1,  # the same load: the model or the server got slower
        None,  # not recorded (a host on another machine, or a run before it was)
        2.4,  # a load that predicts -17%, not the -40% seen
    ],
)
def test_a_speed_alarm_the_load_does_not_explain_stands(load):
    names, watch, speed = _speed(load)
    assert speed.last.alarm and not speed.last.load
    assert [s.metric for s in watch.alarms] == ["tokens_per_s"]
    assert f"ALARM on {names[-1]}:" in trends_text(watch)


def test_the_fail_on_alarm_exit_code_and_the_monitors_page_follow(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from evaluation.view.app import create_app
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'box.db'}"
    names, _, speed = _speed(12.3, url=url)
    assert main(["--database", url, "trends", "box", "--fail-on-alarm"]) == 0
    assert "its alarm set down" in capsys.readouterr().out
    page = TestClient(create_app(make_engine(url))).get("/series/box").text
    assert f"{names[-1]}: " in page and f"(alarm set down: {speed.last.load})" in page
    assert "ALARM" not in page


def test_a_run_records_the_load_of_its_own_machine_only():
    here = HostSpec("box", "http://127.0.0.1:8080", kind="openai")
    there = HostSpec("gpu", "http://gpu-box.example:11434")
    load, cpus = machine_load(here)
    assert load is not None and load >= 0 and cpus and cpus >= 1
    assert machine_load(there) == (None, None)
