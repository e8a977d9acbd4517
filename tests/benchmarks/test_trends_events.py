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
    uncarried = trends_bench.watch_alarms(*data, settings, (20,), carried=False)
    assert_array_equal(uncarried[..., 21:], alone[..., 1:])  # the rule before: afresh
    # the new one learns its spread with the old one's nights, its alarmed ones left out
    kept = (np.where(plain[:, :, m, :20, None], np.nan, a[:, :, :20]) for m, a in enumerate(data))
    taught = trends_bench._watch_alarms(*(a[:, :, 20:] for a in data), settings, tuple(kept))
    assert_array_equal(across[..., 21:], taught[..., 1:])
    assert_array_equal(across[..., 20], plain[..., 20])  # judged as the old stream's next
    assert across[:, trends_bench.TARGET, 0, 20].all()  # 25 points lower: alarmed there


def test_a_new_model_in_a_series_first_nights_is_judged_by_the_night_that_learns(trends_bench):
    """``early2``: a new digest on night 2, TARGET 25 points worse. The segment before
    (nights 0-1) cannot judge night 2; the new segment, taught by its change and its own,
    first judges night 5, which judges night 2 too and raises its alarm (recheck's R5);
    the rule before (``carried=False``) never alarmed on it."""
    settings = WatchSettings()
    data = trends_bench.simulate(np.random.default_rng(1), 4, 12, "steady", "early2")
    late = trends_bench.watch_alarms(*data, settings, (2,))
    before = trends_bench.watch_alarms(*data, settings, (2,), carried=False)
    target = (slice(None), trends_bench.TARGET, 0)
    assert late[target][:, 5].sum() == 3 and not late[target][:, :5].any()  # 3 of 4
    assert not before[target].any()
