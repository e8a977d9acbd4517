"""GPU telemetry of one sweep run, per config: what the evaluate flow stores.

``RunTelemetry.wrap(run)`` wraps the dispatcher's chunk runner. For hosts on this machine
(``local_hosts``; the sampler reads only this machine's GPUs through NVML) every chunk is
a measured span: its mean utilisation and peak memory are reported, unsplit, for each
config in the chunk (``evaluation.run._gpu.summarize`` over the config's spans). Energy
is measured once, from the first local chunk's start to the last one's end, and split
over the local generations by their share of generation time
(``evaluation.run._gpu.attribute_energy`` with latency weights): lanes overlap, so per
chunk energies would count the same joules several times.

For every Ollama host, local or remote, ``/api/ps`` is read after a chunk and the
largest ``size_vram`` of the chunk's model is kept: the VRAM a config needed on its host.
Once it has answered for a host, model and context size, it is read again for them at
most every ``VRAM_READ_EVERY_S`` (a loaded model's VRAM stays as it loaded): read after
every chunk, 256 lanes asked ~100 times a second: 3% (16 cores) to 16% (2 loaded cores)
of the command's interpreter time, and a round trip before each lane's next chunk
(benchmarks/perf/throughput_goal.py --profile).

Without NVML (no driver, no GPU, ``pynvml`` missing) or without a local host, every
config's source is ``"unavailable"`` with ``None`` values: normal, silent, never an error.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from evaluation.backends._preflight import ollama_name_key
from evaluation.backends.base import Backend
from evaluation.errors import BackendError
from evaluation.run._dispatch import ChunkRunner
from evaluation.run._generate import ChunkOutcome
from evaluation.run._gpu import GpuTelemetry, Measurement, Sample, attribute_energy, summarize
from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec

logger = logging.getLogger(__name__)

VRAM_READ_EVERY_S = 10.0
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


class Sampler(Protocol):
    """The slice of ``evaluation.run._gpu.GpuSampler`` used here."""

    @property
    def available(self) -> bool: ...
    def start(self) -> Any: ...
    def stop(self) -> None: ...
    def sample_recent(self) -> Sample: ...
    def window(self, start: Sample, end: Sample) -> Measurement: ...


@dataclass(frozen=True)
class ConfigGpu:
    """One config's stored telemetry: GPU activity (local hosts) and VRAM (Ollama hosts)."""

    telemetry: GpuTelemetry
    vram_bytes: int | None = None


UNAVAILABLE = GpuTelemetry(None, None, None, "unavailable")


def local_hosts(
    hosts: Sequence[HostSpec], machine_names: Collection[str] | None = None
) -> set[str]:
    """Names of the hosts whose URL points at this machine (loopback, or this machine's
    host name), where NVML sees the GPU that serves them. Simulated hosts have no GPU."""
    names = set(LOOPBACK_NAMES)
    if machine_names is None:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        names |= {n.lower() for n in machine_names}
    return {
        h.name
        for h in hosts
        if h.kind != "simulated" and (urlparse(h.url).hostname or "").lower() in names
    }


class RunTelemetry:
    """Collects GPU telemetry while a sweep runs; see the module docstring.

    Use as a context manager around the dispatch (starts and stops the sampler's
    background thread when a local host is measured), then read ``summary()``."""

    def __init__(
        self,
        sampler: Sampler | None,
        backends: Mapping[str, Backend],
        *,
        local: Collection[str],
    ) -> None:
        self._sampler = sampler
        self._backends = backends
        self._local = set(local)
        self._measuring = False
        self._spans: dict[str, list[Measurement]] = defaultdict(list)
        self._weights: list[tuple[str, float]] = []  # (config, latency) per local generation
        self._first: Sample | None = None
        self._last: Sample | None = None
        self._vram: dict[tuple[str, str], int] = {}  # (host, model key) -> max size_vram
        self._hosts_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._configs: dict[str, None] = {}
        self._vram_read: dict[tuple[str, str, int | None], float] = {}  # -> when it answered

    def __enter__(self) -> RunTelemetry:
        self._measuring = (
            bool(self._local) and self._sampler is not None and (self._sampler.available)
        )
        if self._measuring:
            self._sampler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._measuring:
            self._sampler.stop()

    def wrap(self, run: ChunkRunner) -> ChunkRunner:
        """``run`` with each chunk measured (local hosts) and ``/api/ps`` read after it."""

        async def measured(host: HostSpec, items: list[WorkItem]) -> ChunkOutcome:
            measure = self._measuring and host.name in self._local
            start = self._sampler.sample_recent() if measure else None
            outcome = await run(host, items)
            if start is not None:
                end = self._sampler.sample_recent()
                self._record_span(start, end, outcome)
            await self._read_vram(host, items)
            return outcome

        return measured

    def _record_span(self, start: Sample, end: Sample, outcome: ChunkOutcome) -> None:
        span = self._sampler.window(start, end)
        if self._first is None or start.seq < self._first.seq:
            self._first = start
        if self._last is None or end.seq > self._last.seq:
            self._last = end
        for config in dict.fromkeys(r.item.config.hash for r in outcome.records):
            self._spans[config].append(span)
        for record in outcome.records:
            if record.ok and record.result.latency_s is not None:
                self._weights.append((record.item.config.hash, record.result.latency_s))

    async def _read_vram(self, host: HostSpec, items: list[WorkItem]) -> None:
        for item in items:
            self._configs.setdefault(item.config.hash)
        backend = self._backends.get(host.name)
        loaded_models: Callable | None = getattr(backend, "loaded_models", None)
        if not items or loaded_models is None:
            return
        model = ollama_name_key(items[0].model)
        for config in {item.config.hash for item in items}:
            self._hosts_of[config].add((host.name, model))
        read = (host.name, model, items[0].config.params.num_ctx)
        if time.monotonic() - self._vram_read.get(read, -math.inf) < VRAM_READ_EVERY_S:
            return
        try:
            loaded = await loaded_models()
        except BackendError as exc:
            logger.debug("could not read /api/ps on %s: %s", host.name, exc)
            return
        for entry in loaded:
            if ollama_name_key(entry.name) == model and entry.size_vram:
                key = (host.name, model)
                self._vram[key] = max(self._vram.get(key, 0), entry.size_vram)
                self._vram_read[read] = time.monotonic()

    def vram(self) -> dict[tuple[str, str], int]:
        """The most VRAM each (host, model) used so far, as ``/api/ps`` reported it."""
        return dict(self._vram)

    def summary(self) -> dict[str, ConfigGpu]:
        """Per config hash that ran in this run: its GPU telemetry and VRAM."""
        energy = self._energy_per_generation()
        out: dict[str, ConfigGpu] = {}
        for config in self._configs:
            spans = self._spans.get(config)
            telemetry = UNAVAILABLE
            if spans:
                measured = summarize(spans)
                if measured.source != "unavailable":
                    telemetry = GpuTelemetry(
                        mean_util_pct=measured.mean_util_pct,
                        peak_memory_bytes=measured.peak_memory_bytes,
                        energy_j_per_generation=energy.get(config),
                        source=measured.source,
                    )
            vram = [self._vram[k] for k in self._hosts_of.get(config, ()) if k in self._vram]
            out[config] = ConfigGpu(telemetry, max(vram) if vram else None)
        return out

    def _energy_per_generation(self) -> dict[str, float | None]:
        if self._first is None or self._last is None or not self._weights:
            return {}
        total = self._sampler.window(self._first, self._last)
        shares = attribute_energy(total, [w for _, w in self._weights])
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for (config, _), share in zip(self._weights, shares, strict=True):
            if share is None:
                return {}
            sums[config] += share
            counts[config] += 1
        return {config: sums[config] / counts[config] for config in sums}
