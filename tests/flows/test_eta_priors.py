"""The ETA of a run weighs each config's work left by what earlier runs measured of it on
the run's hosts (``tasks.host_pool.measured_mix``): a real host by its real generations,
a simulated host by its simulated ones (their stored latency is the simulated one, which
the run's pace counts too)."""

from __future__ import annotations

import pytest

from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec
from tasks.host_pool import measured_mix
from tests.support.results_db import add_experiment, make_config, make_suite


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
    mix = measured_mix(engine, pending, [HostSpec("h", "simulated://local", 4, "simulated")])
    assert mix.prior_s == {small.hash: pytest.approx(0.1), large.hash: pytest.approx(0.3)}
    mix.start(0.0)
    for _ in range(4):
        mix.stored(1.0, small.hash, 0.1)
    assert mix.eta_s(1.0) == pytest.approx(9.0)


def test_simulated_generations_say_nothing_of_a_real_host(database_url):
    engine, pending, _, _ = _earlier_simulated_run(database_url)
    mix = measured_mix(engine, pending, [HostSpec("h", "http://h:11434", 4)])
    assert mix.prior_s == {}
