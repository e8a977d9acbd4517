"""Where a real engine's slots stood idle (benchmarks/perf/real_engine_parallel.py): read
from llama-server's own log lines, split into the start ramp, the gaps between one
request's end and the next start, and the tail after the last start."""

from __future__ import annotations

import pytest

LOG = """\
0.00.900.000 I srv  log_server_r: request: POST /v1/chat/completions 127.0.0.1 200
0.01.000.000 I slot launch_slot_: id  0 | task 1 | processing task, is_child = 0
0.01.500.000 I slot launch_slot_: id  1 | task 2 | processing task, is_child = 0
0.03.000.000 I slot      release: id  0 | task 1 | stop processing: n_tokens = 30, truncated = 0
0.03.100.000 I slot launch_slot_: id  0 | task 3 | processing task, is_child = 0
0.04.000.000 I slot      release: id  1 | task 2 | stop processing: n_tokens = 30, truncated = 0
1.05.000.000 I slot      release: id  0 | task 3 | stop processing: n_tokens = 30, truncated = 0
"""


def test_the_slots_idle_time_is_split_into_ramp_gaps_and_tail(real_engine):
    timeline = real_engine.slot_timeline(LOG)
    assert timeline[0] == (1.0, 0, True)
    assert timeline[-1] == (65.0, 0, False)  # minutes.seconds.ms.us
    idle = real_engine.idle_slots(timeline, 2)
    assert idle["ramp"] == pytest.approx(0.5)  # slot 1 idle until 1.5 s
    assert idle["gaps"] == pytest.approx(0.1)  # slot 0 from 3.0 to 3.1 s
    assert idle["tail"] == pytest.approx(61.0)  # slot 1 from 4 s to the end at 65 s
    assert (idle["span"], idle["ramp_s"], idle["gaps_n"]) == (64.0, 0.5, 1)
    assert idle["gap_ms"] == pytest.approx(100.0)
    assert real_engine.idle_slots([], 2) == {}
