"""The trends benchmark's model events (benchmarks/perf/trends_benchmark.py) are the
watch's (evaluation/series/_across.py): each segment watched on its own, and the first
night after a restart judged as the next night of the segment before it, or (the rule
before, ``across=False``) not judged at all."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_array_equal

from evaluation.series._watch import WatchSettings


def test_a_restart_watches_each_segment_and_judges_its_first_night_across(trends_bench):
    settings = WatchSettings()
    data = trends_bench.simulate(np.random.default_rng(1), 2, 30, "steady", "worse25")
    plain = trends_bench.watch_alarms(*data, settings)
    assert_array_equal(trends_bench.watch_alarms(*data, settings, ()), plain)
    across = trends_bench.watch_alarms(*data, settings, (20,))
    before = trends_bench.watch_alarms(*data, settings, (20,), across=False)
    assert_array_equal(across[..., :20], plain[..., :20])  # the old segment is as it was
    assert_array_equal(before[..., 20], np.zeros_like(before[..., 20]))  # not judged
    alone = trends_bench._watch_alarms(*(a[:, :, 20:] for a in data), settings)
    assert_array_equal(across[..., 21:], alone[..., 1:])  # the new one learns afresh
    assert_array_equal(across[..., 20], plain[..., 20])  # judged as the old stream's next
    assert across[:, trends_bench.TARGET, 0, 20].all()  # 25 points lower: alarmed there
