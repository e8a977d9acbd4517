"""GpuSampler against a scripted fake NVML, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml
import pytest

from evaluation.run._gpu import (
    MIN_INTERVAL_S,
    GpuSampler,
    GpuTelemetry,
    Measurement,
    attribute_energy,
    summarize,
)

GiB = 1024**3


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeGpu:
    util: int = 0
    used: int = 0
    power_mw: int = 0
    energy_mj: int | None = None  # None: the GPU has no counter (pre-Volta)
    broken: set[str] = field(default_factory=set)  # functions that raise GPU-lost


class FakeNVML:
    """The slice of pynvml the sampler uses. Errors are pynvml's own classes, so
    ``NVMLError(NVML_ERROR_NOT_SUPPORTED)`` arrives as ``NVMLError_NotSupported``."""

    NVMLError = pynvml.NVMLError

    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = False
        self.shutdowns = 0
        self.util_reads = 0
        self.read_event = threading.Event()

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def _check(self, gpu: FakeGpu, name: str) -> None:
        assert self.initialised, f"{name} called before nvmlInit"
        if name in gpu.broken:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:
        self._check(gpu, "util")
        self.util_reads += 1
        if self.util_reads >= 3:
            self.read_event.set()
        return SimpleNamespace(gpu=gpu.util, memory=0)

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        self._check(gpu, "memory")
        return SimpleNamespace(total=80 * GiB, used=gpu.used, free=80 * GiB - gpu.used)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        self._check(gpu, "power")
        return gpu.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        self._check(gpu, "energy")
        if gpu.energy_mj is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu.energy_mj


# Script: GPU 0 has an energy counter, GPU 1 does not. Readings at t = 0, 0.5 and 1.5 s.
# The counter advances by the GPU's true energy, deliberately unequal to the trapezoid of
# the sampled power so the test can tell which one was used.
SCRIPT = [
    # (dt, gpu0 (util, used, W, counter mJ increment), gpu1 (util, used, W))
    (0.0, (10, 1 * GiB, 100, 0), (30, 2 * GiB, 50)),
    (0.5, (90, 3 * GiB, 300, 120_000), (70, 2 * GiB, 150)),
    (1.0, (50, 2 * GiB, 200, 260_000), (20, GiB // 2, 250)),
]
COUNTER_BASE_MJ = 5_000_000
GPU0_COUNTER_J = (120_000 + 260_000) / 1000
GPU1_INTEGRAL_J = 0.5 * (50 + 150) / 2 + 1.0 * (150 + 250) / 2
PEAK_BOTH = 3 * GiB + 2 * GiB  # totals per sample: 3, 5, 2.5 GiB
MEAN_UTIL_BOTH = (10 + 30 + 90 + 70 + 50 + 20) / 6


def apply(step: int, clock: FakeClock, counter: FakeGpu | None, plain: FakeGpu | None) -> None:
    """Advance the clock to the script's next point and set the GPUs' readings."""
    dt, g0, g1 = SCRIPT[step]
    clock.now += dt
    if counter is not None:
        counter.util, counter.used, counter.power_mw = g0[0], g0[1], g0[2] * 1000
        counter.energy_mj = (counter.energy_mj or 0) + g0[3]
    if plain is not None:
        plain.util, plain.used, plain.power_mw = g1[0], g1[1], g1[2] * 1000


def run_script(counter: FakeGpu | None, plain: FakeGpu | None) -> Measurement:
    """The scripted span: edges at t=0 and t=1.5, one background-style sample between."""
    clock = FakeClock()
    gpus = [g for g in (counter, plain) if g is not None]
    sampler = GpuSampler(nvml=FakeNVML(gpus), clock=clock)
    apply(0, clock, counter, plain)
    with sampler.measure() as m:
        apply(1, clock, counter, plain)
        sampler.sample_once()
        apply(2, clock, counter, plain)
    sampler.stop()
    return m


def test_energy_counter_is_preferred_over_power_integral() -> None:
    m = run_script(FakeGpu(energy_mj=COUNTER_BASE_MJ), None)
    assert m.source == "energy_counter"
    assert m.energy_j == pytest.approx(GPU0_COUNTER_J)
    assert m.energy_j != pytest.approx(0.5 * (100 + 300) / 2 + 1.0 * (300 + 200) / 2)
    assert (m.duration_s, m.samples, m.devices) == (1.5, 3, 1)
    assert m.peak_memory_bytes == 3 * GiB
    assert m.mean_util_pct == pytest.approx((10 + 90 + 50) / 3)


def test_power_integral_when_counter_not_supported() -> None:
    m = run_script(None, FakeGpu())
    assert m.source == "power_integral"
    assert m.energy_j == pytest.approx(GPU1_INTEGRAL_J)
    assert m.peak_memory_bytes == 2 * GiB
    assert m.mean_util_pct == pytest.approx((30 + 70 + 20) / 3)


def test_multi_gpu_sums_energy_and_memory_and_averages_utilisation() -> None:
    m = run_script(FakeGpu(energy_mj=COUNTER_BASE_MJ), FakeGpu())
    assert m.devices == 2
    assert m.source == "power_integral"  # one GPU fell back, so the span is the weaker kind
    assert m.energy_j == pytest.approx(GPU0_COUNTER_J + GPU1_INTEGRAL_J)
    assert m.peak_memory_bytes == PEAK_BOTH
    assert m.mean_util_pct == pytest.approx(MEAN_UTIL_BOTH)


def test_window_ignores_samples_outside_it_and_spans_may_overlap() -> None:
    clock = FakeClock()
    counter, plain = FakeGpu(energy_mj=COUNTER_BASE_MJ), FakeGpu()
    sampler = GpuSampler(nvml=FakeNVML([counter, plain]), clock=clock)
    plain.power_mw, plain.used = 900_000, 70 * GiB  # a spike before the span
    sampler.sample_once()
    clock.now += 10
    apply(0, clock, counter, plain)
    outer_start = sampler.sample_once()
    apply(1, clock, counter, plain)
    inner_start = sampler.sample_once()
    apply(2, clock, counter, plain)
    end = sampler.sample_once()
    plain.power_mw = 900_000  # and one after it
    clock.now += 10
    sampler.sample_once()

    outer = sampler.window(outer_start, end)
    inner = sampler.window(inner_start, end)
    assert outer.energy_j == pytest.approx(GPU0_COUNTER_J + GPU1_INTEGRAL_J)
    assert outer.peak_memory_bytes == PEAK_BOTH
    assert inner.energy_j == pytest.approx(260 + 1.0 * (150 + 250) / 2)
    assert (inner.duration_s, inner.samples) == (1.0, 2)
    with pytest.raises(ValueError):
        sampler.window(end, outer_start)


def test_failed_read_is_skipped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    gpu = FakeGpu()
    sampler = GpuSampler(nvml=FakeNVML([gpu]), clock=clock)
    apply(0, clock, None, gpu)
    with sampler.measure() as m:
        apply(1, clock, None, gpu)
        gpu.broken = {"power", "util"}
        sampler.sample_once()
        gpu.broken = set()
        apply(2, clock, None, gpu)
    # The middle point is lost: integrate 50 W -> 250 W straight over 1.5 s.
    assert m.energy_j == pytest.approx(1.5 * (50 + 250) / 2)
    assert m.mean_util_pct == pytest.approx((30 + 20) / 2)
    assert m.samples == 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("GPU is lost" in r.getMessage() for r in caplog.records)


def test_an_interval_shorter_than_nvmls_refresh_is_raised_to_it() -> None:
    """On an H200 NVML refreshed power and energy about every 0.1 s: read every 0.05 s,
    they came in identical pairs (2026-11-26), so a shorter interval adds no information."""
    nvml = FakeNVML([FakeGpu(util=40, used=GiB, power_mw=80_000, energy_mj=0)])
    assert MIN_INTERVAL_S == 0.1
    assert GpuSampler(nvml=nvml, interval_s=0.05).interval_s == MIN_INTERVAL_S
    assert GpuSampler(nvml=nvml, interval_s=0.2).interval_s == 0.2
    assert GpuSampler(nvml=nvml).interval_s == 0.5  # the default
    with pytest.raises(ValueError, match="must be positive"):
        GpuSampler(nvml=nvml, interval_s=0)


def test_background_thread_samples_and_shuts_nvml_down() -> None:
    nvml = FakeNVML([FakeGpu(util=40, used=GiB, power_mw=80_000, energy_mj=0)])
    with GpuSampler(nvml=nvml, interval_s=MIN_INTERVAL_S) as sampler:
        with sampler.measure() as m:
            # Wait for background reads inside this span (some may precede it).
            start = nvml.util_reads
            deadline = time.monotonic() + 5
            while nvml.util_reads < start + 3 and time.monotonic() < deadline:
                time.sleep(0.001)
        assert sampler.available
    assert m.samples >= 3
    assert m.mean_util_pct == 40
    assert nvml.shutdowns == 1 and not nvml.initialised
    sampler.sample_once()  # sampling after stop() initialises NVML again
    assert nvml.initialised
    sampler.stop()
    assert nvml.shutdowns == 2


def unavailable_cases() -> list[tuple[str, FakeNVML | None]]:
    return [
        ("not installed", None),
        ("no library", FakeNVML([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)),
        ("no driver", FakeNVML([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)),
        ("zero GPUs", FakeNVML([])),
    ]


@pytest.mark.parametrize(
    ("why", "nvml"), unavailable_cases(), ids=[c[0] for c in unavailable_cases()]
)
def test_unavailable_is_quiet_and_returns_none_values(
    why: str,
    nvml: FakeNVML | None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    if nvml is None:
        monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    clock = FakeClock()
    with GpuSampler(nvml=nvml, clock=clock) as sampler:
        assert not sampler.available
        with sampler.measure() as m:
            clock.now += 2.0
    assert m == Measurement(source="unavailable", duration_s=2.0)
    assert m.energy_j is m.mean_util_pct is m.peak_memory_bytes is None
    assert attribute_energy(m, [1.0, 3.0]) == [None, None]
    assert summarize([m]).source == "unavailable"
    assert not sampler.available  # decided once, not retried after stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1
    if nvml is not None and nvml.init_error is None:
        assert nvml.shutdowns == 1  # initialised, found nothing, closed again


def test_attribute_energy_splits_by_weight() -> None:
    m = Measurement(source="energy_counter", duration_s=4.0, energy_j=120.0)
    shares = attribute_energy(m, [1.0, 1.0, 2.0])
    assert shares == pytest.approx([30.0, 30.0, 60.0])
    assert sum(shares) == pytest.approx(m.energy_j)
    assert attribute_energy(m, [0.0, 0.0]) == pytest.approx([60.0, 60.0])
    for bad in ([], [1.0, -1.0]):
        with pytest.raises(ValueError):
            attribute_energy(m, bad)


def test_summarize_per_config() -> None:
    spans = [
        Measurement("energy_counter", 2.0, 5, 1, 80.0, 6 * GiB, 300.0),
        Measurement("power_integral", 6.0, 13, 1, 40.0, 7 * GiB, 500.0),
    ]
    t = summarize(spans, generations=10)
    assert t == GpuTelemetry(
        mean_util_pct=pytest.approx((80.0 * 2 + 40.0 * 6) / 8),
        peak_memory_bytes=7 * GiB,
        energy_j_per_generation=pytest.approx((300.0 + 500.0) / 10),
        source="power_integral",
    )
    assert summarize(spans[:1]).energy_j_per_generation == 300.0  # one generation per span
    assert summarize(spans[:1]).source == "energy_counter"
    partial = summarize([spans[0], Measurement(duration_s=1.0)], generations=4)
    assert partial.energy_j_per_generation is None  # a span without energy: no honest total
    assert partial.peak_memory_bytes == 6 * GiB
    assert summarize([]) == GpuTelemetry(None, None, None, "unavailable")
    with pytest.raises(ValueError):
        summarize(spans, generations=0)


def test_old_samples_are_trimmed_but_counter_energy_survives() -> None:
    clock = FakeClock()
    gpu = FakeGpu(util=10, used=GiB, power_mw=100_000, energy_mj=0)
    sampler = GpuSampler(nvml=FakeNVML([gpu]), clock=clock, max_samples=4)
    start = sampler.sample_once()
    for _ in range(10):
        clock.now += 1.0
        gpu.energy_mj = (gpu.energy_mj or 0) + 100_000
        sampler.sample_once()
    end = sampler.sample_once()
    m = sampler.window(start, end)
    assert m.energy_j == pytest.approx(10 * 100.0)
    assert m.samples <= 4 + 2
