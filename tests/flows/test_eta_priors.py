"""The ETA of a run weighs each config's work left by what earlier runs measured of it on
the run's hosts (``tasks.host_pool.measured_mix``): a real host by its real generations,
a simulated host by its simulated ones (their stored latency is the simulated one, which
the run's pace counts too); none where every host answers at once (time scale 0)."""

from __future__ import annotations

import pytest

from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec
from tasks.host_pool import HostPool, measured_mix
from tests.support.results_db import add_experiment, make_config, make_suite

POOL = HostPool({}, {}, None)  # each simulated host sleeps as its url's ?time_scale= says


def _earlier_simulated_run(url: str):
    """An earlier experiment on host "h": a small model at 0.1 s, a large at 0.3 s."""
    from evaluation.storage.db import make_engine, session_scope

    small, large = make_config("small:1b"), make_config("large:8b")
    suite = make_suite(10)
    engine = make_engine(url)
    with session_scope(engine) as session:
        add_experiment(
            session,
            "earlier",
            suite,
            {small: {"exact_match": [1.0] * 10}, large: {"exact_match": [1.0] * 10}},
            latency={small: [0.1] * 10, large: [0.3] * 10},
            simulated=True,
        )
    pending = [WorkItem(c, case, suite.name) for c in (small, large) for case in suite.cases]
    return engine, pending, small, large


def test_a_simulated_hosts_earlier_runs_weigh_the_work_left(database_url):
    """The demo's shape: the small model runs first. After 4 of its 10 generations (0.1 s
    each, on 4 slots in 1 s: 0.4 s of host time a second), 6 × 0.1 + 10 × 0.3 = 3.6 s of
    work are left: 9 s. Without the earlier run's figures the large model counted at this
    run's mean (0.1 s), and the ETA said 4 s, as remaining count ÷ rate does."""
    engine, pending, small, large = _earlier_simulated_run(database_url)
    host = HostSpec("h", "simulated://local?time_scale=1", 4, "simulated")
    mix = measured_mix(engine, pending, [host], POOL)
    assert mix.prior_s == {small.hash: pytest.approx(0.1), large.hash: pytest.approx(0.3)}
    mix.start(0.0)
    for _ in range(4):
        mix.stored(1.0, small.hash, 0.1)
    assert mix.eta_s(1.0) == pytest.approx(9.0)


def test_simulated_generations_say_nothing_of_a_real_host(database_url):
    engine, pending, _, _ = _earlier_simulated_run(database_url)
    mix = measured_mix(engine, pending, [HostSpec("h", "http://h:11434", 4)], POOL)
    assert mix.prior_s == {}


@pytest.mark.parametrize(
    ("url", "run_scale", "weighed"),
    [
        ("simulated://local", None, False),
        ("simulated://local?time_scale=1", 0.0, False),  # `run --time-scale 0`: the default
        ("simulated://local", 1.0, True),  # `run --time-scale 1`
        ("simulated://local?time_scale=0.5", None, True),
    ],
)
def test_a_simulated_host_that_answers_at_once_gives_the_rates_eta(
    database_url, monkeypatch, url, run_scale, weighed
):
    """recheck-2 (nctput-4's mid-run ETA ~2.5x long): a simulated host at time scale 0
    sleeps none of its simulated latency, so every generation takes about the same time
    (the run's CPU) whatever its model's simulated latency says. Weighed by it, a run
    whose larger model came last read `ETA 20 s` with 8 s left (0.32 s left against the
    0.19 s of the last minute). Here: 10 small-model generations a second, then 10 large
    ones left, at the same rate: 1 s left. The earlier run's 0.1 / 0.3 s made it 3 s."""
    import asyncio
    import logging

    from tasks import progress

    engine, pending, small, _ = _earlier_simulated_run(database_url)
    clock = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: clock[0])
    monkeypatch.setattr(progress, "get_run_logger", lambda: logging.getLogger("test"))
    host = HostSpec("h", url, 4, "simulated")
    mix = measured_mix(engine, pending, [host], HostPool({}, {}, run_scale))
    assert (mix is not None) == weighed
    tracker = progress.ProgressArtifact(None, "demo", total=len(pending), mix=mix)
    tracker.work_starts()
    for i, case in enumerate(pending[:10]):
        clock[0] = 0.1 * i
        item = WorkItem(small, case.case, case.suite_name)
        result = type("Result", (), {"latency_s": 0.1})()
        record = type("Record", (), {"item": item, "result": result, "ok": True})()
        record.host, record.answered_at = "h", clock[0]
        asyncio.run(tracker.stored([record]))
    assert tracker.description().endswith(
        "10/20 generations (50%), 10.0/s, ETA " + ("3 s" if weighed else "1 s")
    )
