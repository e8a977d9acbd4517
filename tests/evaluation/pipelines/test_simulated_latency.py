"""On the simulated backend at time scale 0, a pipeline's latency is its simulated
calls laid over the host's slots (issue 28.5), not the client's overhead: parallel
sections take as long as the longest section, sequential ones as long as all of them."""

from __future__ import annotations

import asyncio

import pytest

from evaluation.backends.retry import RetryPolicy
from evaluation.backends.simulated import SimulatedBackend
from evaluation.pipelines import PipelineSetting
from evaluation.run._pipelines import CaseRoute, run_case
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case, Suite

CASE = Case("c", "Report.", ("x",), metadata={"document": "Revenue rose. " * 50})
SUITE = Suite("s", "1", "qa", ("contains",), (CASE,))
SECTIONS = {f"s{i}": f"Section {i}.\n{{previous}}\n{{document}}" for i in range(4)}


def sections_case(parallel: bool, slots: int = 4):
    setting = PipelineSetting.of(
        "sections", {"sections": SECTIONS, "parallel": parallel, "assembly_prompt": "{sections}"}
    )
    params = GenerationParams(parallel=parallel, num_predict=64)
    config = Config("sim-large:8b", params, PromptTemplate("default"), setting)
    backend = SimulatedBackend(
        HostSpec("sim", "simulated://x", slots, "simulated"), suites={"s": SUITE}
    )
    work = WorkItem(config, CASE, "s")
    return asyncio.run(run_case(work, SUITE, CaseRoute(backend, RetryPolicy())))


def test_parallel_sections_overlap_and_sequential_ones_add_up():
    parallel, _, parallel_trace = sections_case(parallel=True)
    sequential, _, sequential_trace = sections_case(parallel=False)
    sections = [s for s in sequential_trace.stages if s.stage.startswith("section:")]
    assert sequential.latency_s == pytest.approx(sum(s.duration_s for s in sequential_trace.stages))
    assert [s.start_s for s in sections] == sorted(s.start_s for s in sections)
    assert sections[1].start_s == pytest.approx(sections[0].start_s + sections[0].duration_s)
    *made_at_once, assembly = parallel_trace.stages
    assert all(s.start_s == 0.0 and s.wait_s == 0.0 for s in made_at_once)  # 4 slots
    longest = max(s.duration_s for s in made_at_once)
    assert assembly.start_s == pytest.approx(longest)
    assert parallel.latency_s == pytest.approx(longest + assembly.duration_s)
    assert parallel.latency_s < 0.6 * sequential.latency_s
    assert parallel_trace.wall_s == parallel.latency_s  # one meaning of latency


def test_more_parallel_calls_than_slots_queue_on_simulated_time():
    _, _, trace = sections_case(parallel=True, slots=2)
    sections = [s for s in trace.stages if s.stage.startswith("section:")]
    assert sum(s.wait_s > 0 for s in sections) == 2  # two of four waited for a slot
