"""What an operator's own tools read: Prometheus metrics over the results database, the
host slots and the local GPUs (``_collector``, ``_gpus``), and health endpoints for
supervisors and probes, served together as one ASGI app (``_app``). See
docs/operations.md."""

from evaluation.observability._app import metrics_registry, observability_app
from evaluation.observability._collector import (
    LATENCY_BUCKETS_S,
    EvalflowCollector,
    GpuReading,
    HostSlots,
    reason_class,
)
from evaluation.observability._gpus import local_gpus

__all__ = [
    "LATENCY_BUCKETS_S",
    "EvalflowCollector",
    "GpuReading",
    "HostSlots",
    "local_gpus",
    "metrics_registry",
    "observability_app",
    "reason_class",
]
