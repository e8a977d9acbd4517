"""Per-config GPU telemetry of a run: real chunks against HTTP stand-ins, the GPU scripted
through a fake NVML, and the rows stored and read back."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from evaluation.backends import OllamaBackend
from evaluation.backends.retry import RetryPolicy
from evaluation.run._generate import ChunkOutcome, run_chunk
from evaluation.run._gpu import GpuSampler, GpuTelemetry
from evaluation.run._telemetry import ConfigGpu, RunTelemetry, local_hosts
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import record_suite, register_experiment
from evaluation.storage.telemetry import save_config_telemetry, telemetry_frame
from evaluation.suites import load_suite
from tests.conftest import REPO
from tests.evaluation.test_telemetry import FakeClock, FakeGpu, FakeNVML, GiB
from tests.support.ollama_wire import ps_entry
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")
CASES = SUITE.cases[:2]


class ForegroundSampler(GpuSampler):
    """No background thread: every sample is taken where the test says."""

    def start(self) -> GpuSampler:
        self.open()
        return self


def config(model: str, temperature: float) -> Config:
    return Config(
        model, GenerationParams(temperature=temperature, num_predict=8), PromptTemplate("default")
    )


def items(cfg: Config) -> list[WorkItem]:
    return [WorkItem(cfg, case, SUITE.name) for case in CASES]


async def discard(records) -> None:
    return None


async def run_on(backends, host: HostSpec, chunk: list[WorkItem]):
    policy = RetryPolicy(max_attempts=1)
    return await run_chunk(backends[host.name], chunk, suite=SUITE, policy=policy, sink=discard)


def test_local_chunks_are_measured_and_energy_split_by_generation_time():
    clock, gpu = FakeClock(), FakeGpu(util=0, used=GiB, power_mw=100_000, energy_mj=1_000_000)
    sampler = ForegroundSampler(nvml=FakeNVML([gpu]), clock=clock)
    a, b = config("llama3.2:3b", 0.0), config("llama3.2:3b", 0.7)
    script = {a.hash: (80, 6 * GiB, 100_000), b.hash: (40, 5 * GiB, 300_000)}  # util, used, mJ

    async def scenario():
        with running_standin(StandInConfig(models=("llama3.2:3b",), latency_ms=5.0)) as server:
            host = server.host("gpu-a", slots=1)
            backends = {"gpu-a": OllamaBackend(host, timeout_s=5.0)}

            async def run(h, chunk):
                outcome = await run_on(backends, h, chunk)
                util, used, energy = script[chunk[0].config.hash]
                clock.now += 1.0
                gpu.util, gpu.used, gpu.energy_mj = util, used, gpu.energy_mj + energy
                return outcome

            with RunTelemetry(sampler, backends, local={"gpu-a"}) as telemetry:
                wrapped = telemetry.wrap(run)
                outcomes = [await wrapped(host, items(a)), await wrapped(host, items(b))]
            await backends["gpu-a"].aclose()
            return telemetry.summary(), outcomes

    usage, outcomes = asyncio.run(scenario())

    latencies = [r.result.latency_s for o in outcomes for r in o.records]
    total_j = (100_000 + 300_000) / 1000
    expected_a = total_j * sum(latencies[:2]) / sum(latencies) / 2
    expected_b = total_j * sum(latencies[2:]) / sum(latencies) / 2
    ua, ub = usage[a.hash].telemetry, usage[b.hash].telemetry
    assert ua.source == ub.source == "energy_counter"
    assert ua.energy_j_per_generation == pytest.approx(expected_a)
    assert ub.energy_j_per_generation == pytest.approx(expected_b)
    # each chunk's span: its start reading and its end reading
    assert ua.mean_util_pct == pytest.approx((0 + 80) / 2)
    assert ub.mean_util_pct == pytest.approx((80 + 40) / 2)
    assert (ua.peak_memory_bytes, ub.peak_memory_bytes) == (6 * GiB, 6 * GiB)
    size_vram = ps_entry("llama3.2:3b")["size_vram"]
    assert usage[a.hash].vram_bytes == usage[b.hash].vram_bytes == size_vram


def test_chunks_starting_and_ending_together_read_the_gpu_once_each_time():
    """A 64-slot host's lanes start their chunks at once: each edge read every GPU in the
    event loop before the chunk's first request. A reading younger than NVML's refresh
    (``MIN_INTERVAL_S``) is the edge of every span that starts or ends then."""
    clock, gpu = FakeClock(), FakeGpu(util=10, used=GiB, power_mw=100_000, energy_mj=1_000)
    nvml = FakeNVML([gpu])
    sampler = ForegroundSampler(nvml=nvml, clock=clock)
    ended = asyncio.Event()

    async def run(host, chunk):
        await ended.wait()
        return ChunkOutcome([])

    async def scenario():
        host = HostSpec("gpu-a", "http://127.0.0.1:1", slots=8)
        with RunTelemetry(sampler, {}, local={"gpu-a"}) as telemetry:
            wrapped = telemetry.wrap(run)
            chunks = [asyncio.ensure_future(wrapped(host, [])) for _ in range(8)]
            await asyncio.sleep(0)
            started = nvml.util_reads
            clock.now += 1.0  # the chunks run for a second, then end together
            gpu.util = 90
            ended.set()
            await asyncio.gather(*chunks)
            return started

    assert (asyncio.run(scenario()), nvml.util_reads) == (1, 2)


def test_remote_host_gets_vram_only_and_no_nvml_is_silent(caplog):
    caplog.set_level(logging.DEBUG, logger="evaluation")
    sampler = GpuSampler(nvml=FakeNVML([], init_error=None))  # NVML sees no GPU

    async def scenario():
        with running_standin(StandInConfig(models=("qwen2.5:0.5b",), latency_ms=1.0)) as server:
            host = server.host("gpu-b", slots=1)
            backends = {"gpu-b": OllamaBackend(host, timeout_s=5.0)}
            cfg = config("qwen2.5:0.5b", 0.0)
            with RunTelemetry(sampler, backends, local={"gpu-b"}) as telemetry:
                await telemetry.wrap(lambda h, c: run_on(backends, h, c))(host, items(cfg))
            await backends["gpu-b"].aclose()
            return cfg, telemetry.summary()

    cfg, usage = asyncio.run(scenario())
    assert usage[cfg.hash].telemetry.source == "unavailable"
    assert usage[cfg.hash].telemetry.mean_util_pct is None
    assert usage[cfg.hash].vram_bytes == ps_entry("qwen2.5:0.5b")["size_vram"]
    assert all(r.levelno <= logging.DEBUG for r in caplog.records)


def test_which_hosts_are_local():
    hosts = [
        HostSpec("a", "http://127.0.0.1:11434"),
        HostSpec("b", "http://LOCALHOST:11434"),
        HostSpec("c", "http://gpu-box:11434"),
        HostSpec("d", "http://gpu-far:11434"),
        HostSpec("e", "simulated://local", kind="simulated"),
    ]
    assert local_hosts(hosts, machine_names={"GPU-box"}) == {"a", "b", "c"}


def test_rows_are_stored_and_replaced(database_url):
    engine = make_engine(database_url)
    cfg = config("llama3.2:3b", 0.0)
    with session_scope(engine) as session:
        record_suite(session, SUITE)
        row = register_experiment(
            session, name="t", suite=SUITE, configs=[cfg], spec={}, spec_path="",
            samples_per_case=1, metrics=["exact_match"], simulated=False,
        )  # fmt: skip
        first = ConfigGpu(GpuTelemetry(55.0, 6 * GiB, 12.5, "energy_counter"), 5 * GiB)
        save_config_telemetry(session, row.id, {cfg.hash: first})
        second = ConfigGpu(GpuTelemetry(None, None, None, "unavailable"), 7 * GiB)
        save_config_telemetry(session, row.id, {cfg.hash: second})
        frame = telemetry_frame(session, row.id)
    assert len(frame) == 1
    stored = frame.iloc[0]
    assert stored["source"] == "unavailable" and int(stored["vram_bytes"]) == 7 * GiB


class _Loaded:
    """A backend whose ``/api/ps`` reads are counted."""

    def __init__(self, model: str) -> None:
        self.reads = 0
        self._model = model

    async def loaded_models(self) -> list[SimpleNamespace]:
        self.reads += 1
        return [SimpleNamespace(name=self._model, size_vram=ps_entry(self._model)["size_vram"])]


def test_vram_is_read_once_for_many_chunks_of_a_model():
    """At 256 lanes a host's chunks end ~100 times a second; ``/api/ps`` after each one
    was 16% of the command's interpreter time and a round trip before every next chunk."""
    backend = _Loaded("qwen2.5:0.5b")
    host = HostSpec("gpu-b", "http://gpu-b", slots=4)
    cfg = config("qwen2.5:0.5b", 0.0)

    async def chunk(h, c) -> ChunkOutcome:
        return ChunkOutcome()

    async def scenario():
        with RunTelemetry(None, {"gpu-b": backend}, local=()) as telemetry:
            for _ in range(20):
                await telemetry.wrap(chunk)(host, items(cfg))
        return telemetry.summary()

    usage = asyncio.run(scenario())
    assert backend.reads == 1
    assert usage[cfg.hash].vram_bytes == ps_entry("qwen2.5:0.5b")["size_vram"]
