"""The pipeline benchmark's ``--timeline`` report (benchmarks/perf/_pipeline_timeline.py)
sweeps sorted times instead of scanning every call, span and lease event at each time
(it was quadratic: > 15 min at 64 slots). Same report as before: the expected text is
what the quadratic code printed for this synthetic timeline."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

EXPECTED = Path(__file__).with_name("pipeline_timeline_report.txt")


@pytest.fixture(scope="module")
def timeline_module():
    path = REPO / "benchmarks/perf/_pipeline_timeline.py"
    spec = importlib.util.spec_from_file_location("_pipeline_timeline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def synthetic(module, *, leases: int = 4, cases: int = 18, seed: int = 7):
    """A run of ``cases`` two-stage cases over ``leases`` lane slots and a spare, with
    what a real one has at its edges: waits while a slot is free, parked leases, a call
    that never got a slot, a chunk still running at the end, two calls on one lease at
    once, lease events out of time order, a zero-length span."""
    rng = random.Random(seed)
    t0 = 1_000.0
    timeline = module.Timeline(phase_start=t0)
    spans: list[list[float]] = []
    free_at = {f"{i:02d}ls-abcdef": t0 + 0.05 * i for i in range(leases)}
    per_chunk = 3
    for first in range(0, cases, per_chunk):
        names = tuple(f"case{n}" for n in range(first, min(first + per_chunk, cases)))
        lid = min(free_at, key=free_at.get)
        called = free_at[lid] + rng.uniform(0.0, 0.02)
        chunk = module.Chunk(names, called, body_start=called + rng.uniform(0.001, 0.01))
        timeline.chunks.append(chunk)
        t = chunk.body_start
        if first == 0:
            timeline.lease_events.append((t - 0.001, lid, "taken"))
        for name in names:
            timeline.cases[name] = [t, 0.0]
            for stage in ("Summarise part", "Combine parts"):
                asked = t + rng.uniform(0.0, 0.01)
                kind = "spare" if rng.random() < 0.2 else "lane"
                call = module.Call(name, stage, asked, kind=kind, lease=lid)
                call.got = asked + rng.choice([0.0, 0.0, rng.uniform(0.005, 0.05)])
                call.http_start = call.got + rng.uniform(0.0005, 0.03)
                call.http_end = call.http_start + rng.uniform(0.02, 0.2)
                call.done = call.http_end + rng.uniform(0.0005, 0.01)
                timeline.calls.append(call)
                spans.append([call.http_start + 0.0003, call.http_end - 0.0002])
                if rng.random() < 0.3:  # parked between two calls
                    timeline.lease_events.append((call.done + 0.001, lid, "parked"))
                    timeline.lease_events.append((call.done + 0.004, lid, "unparked"))
                t = call.done + rng.uniform(0.0, 0.03)
            timeline.cases[name][1] = t
        chunk.body_end = t + 0.002
        chunk.returned = chunk.body_end + rng.uniform(0.001, 0.02)
        free_at[lid] = chunk.returned
    last_chunk = timeline.chunks[-1]
    last_chunk.body_end = last_chunk.returned = None  # still running at the phase's end
    never = module.Call("case0", "Summarise part", t0 + 0.3, kind="lane", lease="?")
    never.done = t0 + 0.35  # cancelled before it got a slot
    timeline.calls.append(never)
    lid = next(iter(free_at))
    both = [c for c in timeline.calls if c.lease == lid][:2]
    overlap = module.Call(both[1].case, "Summarise again", both[0].got, kind="spare", lease=lid)
    overlap.got, overlap.done = both[0].got + 0.001, both[1].done
    overlap.http_start, overlap.http_end = both[0].http_start, both[0].http_end
    timeline.calls.append(overlap)
    end = max(free_at.values())
    for lease in free_at:
        timeline.lease_events.append((end + 0.01, lease, "released"))
    timeline.lease_events.insert(1, (t0 + 0.5, lid, "parked"))  # recorded late
    spans.append([t0 + 0.2, t0 + 0.2])
    phase_s = end + 0.02 - t0
    return timeline, spans, phase_s


def test_the_report_is_what_the_quadratic_one_printed(timeline_module):
    timeline, spans, phase_s = synthetic(timeline_module)
    report = timeline_module.Timeline.report(timeline, spans, 3, phase_s)
    assert report == EXPECTED.read_text().rstrip("\n")
