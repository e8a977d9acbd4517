"""The series watch's verdict, computed once and read by every reader that needs no more
than it: the Prometheus gauges, the item bank's left-out runs, `evalflow trends`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlmodel import Session

import evaluation.series._trends as trends
from evaluation.observability import metrics_registry
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import ViewPage
from flows.cli import main as cli
from tests.support.series_db import SUITE, add_nights


def scrape(registry) -> dict:
    """The trend gauges of one scrape: {(sample, series): value}."""
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels["series"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("evalflow_trend_alarm")
    }


def same_content(session: Session) -> None:
    """Every run's suite digest is the suite's content as stored (the bank reads them)."""
    from evaluation.series.schema import SeriesRun
    from evaluation.storage.models import SuiteRow

    content = session.get(SuiteRow, SUITE.name).fingerprint
    for run in session.exec(select(SeriesRun)).scalars():
        run.suite_digest = content


@pytest.fixture
def watches(monkeypatch) -> list[str]:
    """The streams the watch computes from here on (their metric), in any reader."""
    computed: list[str] = []
    stream = trends._stream

    def counted(points, config, metric, *args, **kwargs):
        computed.append(metric)
        return stream(points, config, metric, *args, **kwargs)

    # the watch, and a stream restarted at an accepted run (``_trends._from_run``)
    monkeypatch.setattr(trends, "_stream", counted)
    return computed


def test_a_scrape_after_trends_or_the_bank_reads_their_verdict(tmp_path, watches, capsys):
    """The gauges ran the whole watch inside the scrape (3.8 s of CPU on a first scrape
    of 3 series x 30 nights) while `trends` and the bank had each run it too: one
    verdict is kept, and a scrape after any of them computes nothing."""
    from evaluation.itembank import stored_scores

    url = f"sqlite:///{tmp_path / 'series.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        add_nights(session, 10, series="watched", seed=1)
        add_nights(session, 1, series="watched", drop_from=10, slow_from=10, seed=1, first=10)
        same_content(session)
    assert cli(["--database", url, "trends", "watched", "--fail-on-alarm"]) == 1
    assert watches  # trends computed the watch
    watches.clear()
    registry = metrics_registry(engine)
    assert scrape(registry) == {
        ("evalflow_trend_alarm", "watched"): 1.0,
        ("evalflow_trend_alarm_streams", "watched"): 2.0,
    }
    assert watches == []  # trends' verdict, read back
    with session_scope(engine) as session:
        add_nights(session, 1, series="watched", seed=3, first=11)
        same_content(session)
    with session_scope(engine) as session:
        left = stored_scores(session, SUITE.name, "exact_match").left
    assert left.alarmed == ("watched-night-10",)
    assert watches  # a night was added: the bank computed the watch again
    watches.clear()
    assert scrape(registry)[("evalflow_trend_alarm", "watched")] == 0.0
    assert watches == []  # the bank's verdict, read back
    capsys.readouterr()
    assert cli(["--database", url, "trends", "watched", "--k", "0.5"]) == 0
    assert watches  # other settings: its own watch, not the series' verdict
    watches.clear()
    assert scrape(registry)[("evalflow_trend_alarm", "watched")] == 0.0
    assert watches == []


def test_a_run_whose_process_died_reads_crashed_after_its_verdict_was_kept(tmp_path, watches):
    """The verdict is kept while a run is going on (a running run is not judged); its
    fingerprint holds each run's status as `status` judges it, so a run killed (kill -9)
    after it was kept is read back as crashed: left out of the bank as not completed,
    the series' verdict computed again with the run crashed."""
    from evaluation.itembank._left_out import left_out
    from evaluation.series import series_verdict
    from evaluation.storage.repository import get_experiment
    from evaluation.storage.runs import RunProcess, claim_experiment, experiment_status

    engine = make_engine(f"sqlite:///{tmp_path / 'series.db'}")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with session_scope(engine) as session:
            names = add_nights(session, 10, series="wt", drop_from=9, seed=1)
            names += add_nights(session, 1, series="wt", seed=2, first=10)
            get_experiment(session, names[-1]).status = "running"
            here = RunProcess.current()
            claim_experiment(session, names[-1], RunProcess(child.pid, "", here.hostname))
        with session_scope(engine) as session:
            assert left_out(session, names).not_completed == ()
            kept = series_verdict(session, "wt", None)
            assert kept.alarmed == (names[9],) and kept.last_alarms == 1
            fingerprint = session.exec(select(ViewPage.fingerprint)).scalars().one()
        watches.clear()
        with session_scope(engine) as session:
            assert series_verdict(session, "wt", None) == kept  # read back while it runs
        assert watches == []
    finally:
        child.kill()
        child.wait()
    with session_scope(engine) as session:
        status = experiment_status(session, get_experiment(session, names[-1])).status
        assert status == "crashed"
        left = left_out(session, names)
        assert (left.alarmed, left.not_completed) == ((names[9],), (names[-1],))
        assert series_verdict(session, "wt", None) == kept
        assert session.exec(select(ViewPage.fingerprint)).scalars().one() != fingerprint
    assert watches  # computed again: the run's status changed


def test_a_scrape_keeps_what_it_computed_for_the_next_reader(tmp_path, watches):
    """A scrape that computed a verdict keeps it (its session commits): the next
    scrape, in another process as much as this one, reads it back."""
    engine = make_engine(f"sqlite:///{tmp_path / 'series.db'}")
    with Session(engine) as session:
        add_nights(session, 6, series="a", seed=1)
        session.commit()
    first = scrape(metrics_registry(engine))
    assert first == {
        ("evalflow_trend_alarm", "a"): 0.0,
        ("evalflow_trend_alarm_streams", "a"): 0.0,
    }
    assert watches
    watches.clear()
    assert scrape(metrics_registry(engine)) == first  # a fresh collector: what is stored
    assert watches == []


def test_a_scrape_after_the_monitors_series_page_reads_its_verdict(tmp_path, watches):
    """The series page runs the whole watch (it draws every stream); it keeps the
    verdict, so the scrape after it computes nothing."""
    from fastapi.testclient import TestClient

    from evaluation.view.app import create_app

    engine = make_engine(f"sqlite:///{tmp_path / 'series.db'}")
    with session_scope(engine) as session:
        add_nights(session, 10, series="paged", seed=1)
        add_nights(session, 1, series="paged", drop_from=10, seed=1, first=10)
    assert TestClient(create_app(engine)).get("/series/paged").status_code == 200
    assert watches
    watches.clear()
    assert scrape(metrics_registry(engine))[("evalflow_trend_alarm", "paged")] == 1.0
    assert watches == []


def test_a_read_only_database_is_watched_and_its_series_page_served_keeping_nothing(
    tmp_path, capsys
):
    """The newcomer's F3: on a read-only copy `trends` refused ("it is read-only") and the
    view's /series/<name> answered HTTP 500 with the traceback of the INSERT that keeps
    the verdict. Keeping it is best-effort: read, nothing written (SQLite's read-only
    mode, which file permissions do not give root)."""
    from fastapi.testclient import TestClient

    from evaluation.view.app import create_app

    path = tmp_path / "shared.db"
    engine = make_engine(f"sqlite:///{path}")
    with session_scope(engine) as session:
        add_nights(session, 6, series="watched", seed=1)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert cli(["--database", read_only, "trends", "watched"]) == 0
    out, err = capsys.readouterr()
    assert "no alarm on watched-night-05." in out and err == ""
    reader = make_engine(read_only)
    page = TestClient(create_app(reader)).get("/series/watched")
    reader.dispose()
    assert page.status_code == 200 and 'data-status="ok"' in page.text
    with session_scope(engine) as session:
        assert session.exec(select(ViewPage)).all() == []
