"""One sweep's run, below Prefect: the sweep prepared from its spec (``_sweep``), work
items and their prompts (``_work``), host checks before a run (``_preflight``) and for a
user (``_doctor``), the work spread over host slots (``_dispatch``), one chunk generated
(``_generate``), its rate and ETA (``_rate``), scoring (``_scoring``), and GPU
telemetry: NVML sampling (``_gpu``) attributed to configs (``_telemetry``). Names are
imported on first use."""

from __future__ import annotations

from evaluation._lazy import lazy_exports

_EXPORTS = {
    "Sweep": "evaluation.run._sweep",
    "prepare_sweep": "evaluation.run._sweep",
    "open_backends": "evaluation.run._sweep",
    "WorkItem": "evaluation.run._work",
    "WorkKey": "evaluation.run._work",
    "GenerationRecord": "evaluation.run._work",
    "build_messages": "evaluation.run._work",
    "case_uid": "evaluation.run._work",
    "HostCheck": "evaluation.run._preflight",
    "preflight_hosts": "evaluation.run._preflight",
    "check_before_run": "evaluation.run._preflight",
    "Check": "evaluation.run._doctor",
    "DoctorReport": "evaluation.run._doctor",
    "check_database": "evaluation.run._doctor",
    "check_host": "evaluation.run._doctor",
    "check_spec": "evaluation.run._doctor",
    "DispatchReport": "evaluation.run._dispatch",
    "ChunkRunner": "evaluation.run._dispatch",
    "dispatch": "evaluation.run._dispatch",
    "default_chunk_size": "evaluation.run._dispatch",
    "ChunkOutcome": "evaluation.run._generate",
    "run_chunk": "evaluation.run._generate",
    "TIMING_METRICS": "evaluation.run._scoring",
    "score_generations": "evaluation.run._scoring",
    "score_generations_detailed": "evaluation.run._scoring",
    "results_from_rows": "evaluation.run._scoring",
    "GpuSampler": "evaluation.run._gpu",
    "GpuTelemetry": "evaluation.run._gpu",
    "Measurement": "evaluation.run._gpu",
    "Sample": "evaluation.run._gpu",
    "attribute_energy": "evaluation.run._gpu",
    "summarize": "evaluation.run._gpu",
    "Rate": "evaluation.run._rate",
    "WorkMix": "evaluation.run._rate",
    "work_mix": "evaluation.run._rate",
    "format_duration": "evaluation.run._rate",
    "progress_line": "evaluation.run._rate",
    "ConfigGpu": "evaluation.run._telemetry",
    "RunTelemetry": "evaluation.run._telemetry",
    "local_hosts": "evaluation.run._telemetry",
}

__all__ = [
    "TIMING_METRICS",
    "Check",
    "ChunkOutcome",
    "ChunkRunner",
    "ConfigGpu",
    "DispatchReport",
    "DoctorReport",
    "GenerationRecord",
    "GpuSampler",
    "GpuTelemetry",
    "HostCheck",
    "Measurement",
    "Rate",
    "RunTelemetry",
    "Sample",
    "Sweep",
    "WorkItem",
    "WorkKey",
    "WorkMix",
    "attribute_energy",
    "build_messages",
    "case_uid",
    "check_before_run",
    "check_database",
    "check_host",
    "check_spec",
    "default_chunk_size",
    "dispatch",
    "format_duration",
    "local_hosts",
    "open_backends",
    "preflight_hosts",
    "prepare_sweep",
    "progress_line",
    "results_from_rows",
    "run_chunk",
    "score_generations",
    "score_generations_detailed",
    "summarize",
    "work_mix",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
