"""Run the GPU sampler for a few seconds on whatever GPUs NVML sees and print what it reads.

    python benchmarks/perf/gpu_telemetry_probe.py [--seconds 5] [--interval 0.5] [--busy]

(``PYTHONPATH=.`` from the repository root where evalflow is not pip-installed.)
``--busy`` loads GPU 0 with matrix products through torch, if torch with CUDA is there.
It prints how long NVML took to start and each sample's reads (a chunk's edges read
every GPU: ``GpuSampler.sample_recent``). For each GPU with an energy counter it also
prints the trapezoid of the probe's own power readings, so counter and power integral
can be compared on real hardware. The probe's
own readings follow ``--interval`` even below the sampler's floor (0.1 s, NVML's refresh:
``evaluation.run._gpu.MIN_INTERVAL_S``), to show that readings then repeat.
Prints "NVML unavailable" and exits 0 on a machine without NVML.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from itertools import pairwise

from evaluation.run._gpu import MIN_INTERVAL_S, GpuSampler, Sample


def busy_loop(stop: threading.Event) -> Callable[[], None] | None:
    """A thread body that keeps GPU 0 busy, or None where torch/CUDA is missing."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None

    def run() -> None:
        a = torch.randn(8192, 8192, device="cuda")
        while not stop.is_set():
            for _ in range(20):
                a = torch.tanh(a @ a)
            torch.cuda.synchronize()

    return run


def trapezoid_j(samples: list[Sample], device: int) -> float:
    points = [(s.time_s, s.readings[device].power_w) for s in samples]
    known = [(t, p) for t, p in points if p is not None]
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairwise(known))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()

    sampler = GpuSampler(interval_s=args.interval)
    if args.interval < MIN_INTERVAL_S:
        print(
            f"note: NVML refreshes power and energy about every {MIN_INTERVAL_S:g} s: "
            f"readings every {args.interval:g} s repeat (the sampler's own: every "
            f"{sampler.interval_s:g} s)"
        )
    started = time.perf_counter()
    if not sampler.available:
        print("NVML unavailable")
        return
    print(f"NVML started in {1000 * (time.perf_counter() - started):.1f} ms")

    stop = threading.Event()
    worker = None
    if args.busy:
        body = busy_loop(stop)
        if body is None:
            print("--busy: torch with CUDA not available; sampling an idle GPU")
        else:
            worker = threading.Thread(target=body, daemon=True)
            worker.start()

    own: list[Sample] = []
    took_ms: list[float] = []  # each sample's reads: what a span's edge cost the event loop
    with sampler, sampler.measure() as m:
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            took = time.perf_counter()
            sample = sampler.sample_once()
            took_ms.append(1000 * (time.perf_counter() - took))
            own.append(sample)
            cells = [
                f"gpu{k}: util={r.util_pct}% mem={r.memory_used_bytes} B "
                f"power={r.power_w} W energy={r.energy_mj} mJ"
                for k, r in enumerate(sample.readings)
            ]
            print(f"t={sample.time_s - own[0].time_s:6.2f}s  " + "  |  ".join(cells))
            time.sleep(args.interval)
    stop.set()
    if worker is not None:
        worker.join()

    print(
        f"measurement: source={m.source} duration={m.duration_s:.2f}s samples={m.samples} "
        f"devices={m.devices} mean_util={m.mean_util_pct}% peak_mem={m.peak_memory_bytes} B "
        f"energy={m.energy_j} J"
    )
    took_ms.sort()
    print(
        f"a sample (every GPU's four reads) took median {took_ms[len(took_ms) // 2]:.2f} ms, "
        f"max {took_ms[-1]:.2f} ms over {len(took_ms)}"
    )
    for k, reading in enumerate(own[0].readings):
        if reading.energy_mj is not None and own[-1].readings[k].energy_mj is not None:
            counter_j = (own[-1].readings[k].energy_mj - reading.energy_mj) / 1000
            print(
                f"gpu{k}: counter {counter_j:.1f} J vs power integral "
                f"{trapezoid_j(own, k):.1f} J over the probe's own samples"
            )


if __name__ == "__main__":
    main()
