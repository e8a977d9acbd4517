"""The local GPUs' readings for the metrics endpoint, from the run's own NVML sampler."""

from __future__ import annotations

from collections.abc import Callable

from evaluation.observability._collector import GpuReading
from evaluation.run._gpu import GpuSampler


def local_gpus(sampler: GpuSampler | None = None) -> Callable[[], list[GpuReading]]:
    """A reader of every GPU NVML sees, now; it reads nothing where NVML is absent."""
    sampler = sampler or GpuSampler(max_samples=2)  # read now, keep no history

    def read() -> list[GpuReading]:
        if not sampler.available:
            return []
        return [
            GpuReading(
                index=i,
                util_pct=r.util_pct,
                memory_used_bytes=r.memory_used_bytes,
                power_w=r.power_w,
                energy_j=None if r.energy_mj is None else r.energy_mj / 1000.0,
            )
            for i, r in enumerate(sampler.sample_once().readings)
        ]

    return read
