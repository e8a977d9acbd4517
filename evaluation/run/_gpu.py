"""GPU telemetry from NVML: utilisation, memory and energy while generations run locally.

A ``GpuSampler`` reads every GPU NVML sees, in a background thread every ``interval_s``
seconds and at the edges of each measured span. A span's energy comes, per GPU, from the
driver's energy counter (``nvmlDeviceGetTotalEnergyConsumption``, Volta and newer) as the
difference of its readings at the span's edges; where a GPU has no counter, from the
trapezoidal integral of power draw over the span's samples. GPUs are summed: energy and
memory are the host's, utilisation is the mean over GPUs and samples.

Attribution. NVML sees a GPU, not a request, so energy is attributed by a rule:

- The pipeline measures one span per batch of a single config on a host; every
  generation in the span gets ``energy_j / generations`` (``summarize``).
- When several configs share a GPU within one span (``OLLAMA_NUM_PARALLEL`` > 1 or
  interleaved batches), the span's energy is split by each generation's share of
  generation time: ``attribute_energy(measurement, [g.latency_s for g in generations])``.
  Utilisation and peak memory are properties of the span and are reported, unsplit, for
  every config in it.

Where NVML is absent (``pynvml`` not installed, no driver, zero GPUs) the sampler is
``available == False`` and every measurement has source ``"unavailable"`` and ``None``
values. That is the normal state of a machine without a GPU, so it is logged at DEBUG only
and never raises. Remote hosts are not measured here: their GPU is another machine's.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Any, Literal

logger = logging.getLogger(__name__)

Source = Literal["energy_counter", "power_integral", "unavailable"]

DEFAULT_INTERVAL_S = 0.5
DEFAULT_MAX_SAMPLES = 100_000  # about 14 hours at the default interval
# NVML refreshes power draw and the energy counter about every 0.1 s: read every 0.05 s
# on an H200 (driver 580.159.04, 2026-11-26) they came in identical pairs. A shorter
# interval is raised to this one; it would only store each reading twice.
MIN_INTERVAL_S = 0.1


@dataclass(frozen=True)
class DeviceReading:
    """One GPU at one instant; ``None`` where NVML could not say."""

    util_pct: float | None
    memory_used_bytes: int | None
    power_w: float | None
    energy_mj: int | None  # the driver's cumulative counter; None where it has none


@dataclass(frozen=True)
class Sample:
    """All GPUs at one instant. ``readings`` is empty when NVML is unavailable."""

    seq: int
    time_s: float
    readings: tuple[DeviceReading, ...]


@dataclass(slots=True)
class Measurement:
    """GPU activity over one span. ``energy_j`` is the sum over GPUs; ``peak_memory_bytes``
    the highest total memory in use; ``mean_util_pct`` the mean over GPUs and samples."""

    source: Source = "unavailable"
    duration_s: float = 0.0
    samples: int = 0
    devices: int = 0
    mean_util_pct: float | None = None
    peak_memory_bytes: int | None = None
    energy_j: float | None = None


@dataclass(frozen=True)
class GpuTelemetry:
    """What is stored per config: GPU activity over all of its generations."""

    mean_util_pct: float | None
    peak_memory_bytes: int | None
    energy_j_per_generation: float | None
    source: Source


class GpuSampler:
    """Samples every GPU NVML sees. Use as a context manager (``start``/``stop``) and wrap
    spans in ``measure()``; or take samples with ``sample_once()`` and measure between two
    of them with ``window()``, which lets spans overlap.

    ``nvml`` is the ``pynvml`` module (imported lazily when ``None``); tests pass a fake.
    Memory: the last ``max_samples`` samples are kept; a span longer than that loses its
    early inner samples (counter energy is unaffected, it only needs the span's edges).
    ``interval_s`` below ``MIN_INTERVAL_S`` is raised to it (NVML's own refresh).
    """

    def __init__(
        self,
        nvml: Any = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        if max_samples < 2:
            raise ValueError(f"max_samples must be at least 2, got {max_samples}")
        self.interval_s = max(interval_s, MIN_INTERVAL_S)
        self._nvml_arg = nvml
        self._clock = clock
        self._max_samples = max_samples
        self._lock = threading.Lock()
        self._opened = False
        self._nvml: Any = None  # the module, once NVML is initialised
        self._handles: list[Any] = []
        self._has_counter: list[bool] = []
        self._buffer: list[Sample] = []
        self._next_seq = 0
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime ---------------------------------------------------------------------

    def open(self) -> bool:
        """Initialise NVML once (later calls are free); return whether it is usable."""
        with self._lock:
            if not self._opened:
                self._opened = True
                self._init_nvml()
            return self._nvml is not None

    @property
    def available(self) -> bool:
        """Whether NVML works and sees at least one GPU (initialises NVML on first use)."""
        return self.open()

    def start(self) -> GpuSampler:
        """Start sampling in a background thread; a no-op when NVML is unavailable."""
        if self.open() and self._thread is None:
            self._stop_event.clear()
            self._thread = threading.Thread(
                target=self._run, name="evalflow-gpu-sampler", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and shut NVML down; a later sample re-initialises it. Samples
        already taken stay usable with ``window``."""
        if self._thread is not None:
            self._stop_event.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._nvml is not None:  # unavailable stays decided: retrying is pointless
                self._shutdown(self._nvml)
                self._nvml = None
                self._handles, self._has_counter = [], []
                self._opened = False

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- sampling ---------------------------------------------------------------------

    def sample_once(self) -> Sample:
        """Read every GPU now and keep the sample. Thread-safe; the thread calls it too."""
        self.open()
        with self._lock:
            now = self._clock()
            seq = self._next_seq
            self._next_seq += 1
            if self._nvml is None:
                return Sample(seq, now, ())
            readings = tuple(
                self._read_device(handle, counter)
                for handle, counter in zip(self._handles, self._has_counter, strict=True)
            )
            sample = Sample(seq, now, readings)
            self._buffer.append(sample)
            if len(self._buffer) > self._max_samples:
                del self._buffer[: len(self._buffer) - self._max_samples // 2]
            return sample

    def sample_recent(self) -> Sample:
        """The last sample while it is younger than ``MIN_INTERVAL_S`` (NVML's refresh:
        a new reading would repeat it), else ``sample_once()``. For the edges of spans
        that start and end together: a 64-slot host's lanes start their chunks at once,
        and each edge read every GPU in the event loop, before the chunk's first request
        (four NVML calls a GPU)."""
        with self._lock:
            last = self._buffer[-1] if self._buffer else None
            if last is not None and self._clock() - last.time_s < MIN_INTERVAL_S:
                return last
        return self.sample_once()

    def window(self, start: Sample, end: Sample) -> Measurement:
        """GPU activity between two samples from ``sample_once`` (inclusive)."""
        if end.seq < start.seq:
            raise ValueError("window end was sampled before its start")
        duration = end.time_s - start.time_s
        if not start.readings or not end.readings:
            return Measurement(duration_s=duration)
        with self._lock:
            lo = bisect_right(self._buffer, start.seq, key=_seq)
            hi = bisect_left(self._buffer, end.seq, key=_seq)
            inner = self._buffer[lo:hi]
        series = [start] if end.seq == start.seq else [start, *inner, end]
        return _summarise_series(series, duration)

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        """Measure the ``with`` body; the yielded ``Measurement`` is filled on exit."""
        start = self.sample_once()
        result = Measurement()
        try:
            yield result
        finally:
            filled = self.window(start, self.sample_once())
            for f in fields(Measurement):
                setattr(result, f.name, getattr(filled, f.name))

    # -- internals --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self.sample_once()
            if self._stop_event.wait(self.interval_s):
                return

    def _init_nvml(self) -> None:
        nvml = self._nvml_arg
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError:
                logger.debug("pynvml is not installed; GPU telemetry unavailable")
                return
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            logger.debug("NVML did not initialise (%s); GPU telemetry unavailable", exc)
            return
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except nvml.NVMLError as exc:
            logger.debug("NVML could not list GPUs (%s); GPU telemetry unavailable", exc)
            handles = []
        if not handles:
            logger.debug("NVML sees no GPU; GPU telemetry unavailable")
            self._shutdown(nvml)
            return
        self._nvml, self._handles = nvml, handles
        self._has_counter = [
            _read(nvml, "nvmlDeviceGetTotalEnergyConsumption", h) is not None for h in handles
        ]

    def _read_device(self, handle: Any, has_counter: bool) -> DeviceReading:
        nvml = self._nvml
        util = _read(nvml, "nvmlDeviceGetUtilizationRates", handle)
        memory = _read(nvml, "nvmlDeviceGetMemoryInfo", handle)
        power_mw = _read(nvml, "nvmlDeviceGetPowerUsage", handle)
        energy_mj = (
            _read(nvml, "nvmlDeviceGetTotalEnergyConsumption", handle) if has_counter else None
        )
        return DeviceReading(
            util_pct=None if util is None else float(util.gpu),
            memory_used_bytes=None if memory is None else int(memory.used),
            power_w=None if power_mw is None else power_mw / 1000.0,
            energy_mj=energy_mj,
        )

    @staticmethod
    def _shutdown(nvml: Any) -> None:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:
            logger.debug("NVML shutdown failed: %s", exc)


def _seq(sample: Sample) -> int:
    return sample.seq


def _read(nvml: Any, function: str, handle: Any) -> Any:
    """One NVML read; ``None`` when the GPU cannot answer (not supported, lost, ...)."""
    try:
        return getattr(nvml, function)(handle)
    except nvml.NVMLError as exc:
        logger.debug("NVML %s failed: %s", function, exc)
        return None


def _summarise_series(series: Sequence[Sample], duration_s: float) -> Measurement:
    """Energy, peak memory and mean utilisation over consecutive samples."""
    start, end = series[0], series[-1]
    devices = len(start.readings)
    energies: list[float | None] = []
    all_counters = True
    for k in range(devices):
        e0, e1 = start.readings[k].energy_mj, end.readings[k].energy_mj
        if e0 is not None and e1 is not None:
            energies.append((e1 - e0) / 1000.0)
        else:
            all_counters = False
            energies.append(_power_integral(series, k, duration_s))
    totals = [
        sum(r.memory_used_bytes for r in s.readings)
        for s in series
        if all(r.memory_used_bytes is not None for r in s.readings)
    ]
    utils = [r.util_pct for s in series for r in s.readings if r.util_pct is not None]
    return Measurement(
        source="energy_counter" if all_counters else "power_integral",
        duration_s=duration_s,
        samples=len(series),
        devices=devices,
        mean_util_pct=sum(utils) / len(utils) if utils else None,
        peak_memory_bytes=max(totals) if totals else None,
        energy_j=None if None in energies else sum(e for e in energies if e is not None),
    )


def _power_integral(series: Sequence[Sample], device: int, duration_s: float) -> float | None:
    """Trapezoidal ∫ power dt in joules for one GPU; ``None`` if too few power readings."""
    known = [
        (s.time_s, s.readings[device].power_w)
        for s in series
        if s.readings[device].power_w is not None
    ]
    if len(known) < 2:
        return 0.0 if duration_s == 0 and known else None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairwise(known))


def attribute_energy(measurement: Measurement, weights: Sequence[float]) -> list[float | None]:
    """Split a span's energy across its generations in proportion to ``weights`` (e.g. each
    generation's latency). All-zero weights split equally; unavailable energy gives Nones."""
    if not weights:
        raise ValueError("attribute_energy needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    if measurement.energy_j is None:
        return [None] * len(weights)
    total = sum(weights)
    if total == 0:
        return [measurement.energy_j / len(weights)] * len(weights)
    return [measurement.energy_j * w / total for w in weights]


def summarize(measurements: Sequence[Measurement], generations: int | None = None) -> GpuTelemetry:
    """One config's telemetry from its spans. ``generations`` is how many generations the
    spans hold together (default: one per measurement). Utilisation is averaged weighting
    each span by its duration; energy per generation is ``None`` unless every span has it.
    The source is the weaker method among the measured spans; unmeasured ones are skipped
    for utilisation and memory."""
    measured = [m for m in measurements if m.source != "unavailable"]
    if not measured:
        return GpuTelemetry(None, None, None, "unavailable")
    n = len(measurements) if generations is None else generations
    if n <= 0:
        raise ValueError(f"generations must be positive, got {n}")
    energies = [m.energy_j for m in measurements]
    energy = None if None in energies else sum(e for e in energies if e is not None) / n
    utils = [(m.mean_util_pct, m.duration_s) for m in measured if m.mean_util_pct is not None]
    span = sum(d for _, d in utils)
    if not utils:
        util = None
    elif span > 0:
        util = sum(u * d for u, d in utils) / span
    else:
        util = sum(u for u, _ in utils) / len(utils)
    peaks = [m.peak_memory_bytes for m in measured if m.peak_memory_bytes is not None]
    weakest = any(m.source == "power_integral" for m in measured)
    return GpuTelemetry(
        mean_util_pct=util,
        peak_memory_bytes=max(peaks) if peaks else None,
        energy_j_per_generation=energy,
        source="power_integral" if weakest else "energy_counter",
    )
