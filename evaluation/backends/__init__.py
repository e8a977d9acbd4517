"""Model servers behind one interface: Ollama's native API, OpenAI-compatible servers
and the simulated backend; ``make_backend`` picks one from a HostSpec. Names are imported
on first use: ``base`` (what metrics and storage need of a generation) does not bring in
httpx and the HTTP backends."""

from __future__ import annotations

from evaluation._lazy import lazy_exports

_EXPORTS = {
    "Backend": "evaluation.backends.base",
    "DoneReason": "evaluation.backends.base",
    "GenerationRequest": "evaluation.backends.base",
    "GenerationResult": "evaluation.backends.base",
    "ModelInfo": "evaluation.backends.base",
    "LoadedModel": "evaluation.backends.ollama",
    "OllamaBackend": "evaluation.backends.ollama",
    "OpenAICompatBackend": "evaluation.backends.openai_compat",
    "RetryPolicy": "evaluation.backends.retry",
    "embed_with_retries": "evaluation.backends.retry",
    "generate_with_retries": "evaluation.backends.retry",
    "LIMIT_PREFIX": "evaluation.backends._machine_slots",
    "host_key": "evaluation.backends._machine_slots",
    "host_limit_name": "evaluation.backends._machine_slots",
    "machine_slot_readings": "evaluation.backends._machine_slots",
    "make_backend": "evaluation.backends._make",
    "stop_sending": "evaluation.backends._sending",
}

__all__ = [
    "LIMIT_PREFIX",
    "Backend",
    "DoneReason",
    "GenerationRequest",
    "GenerationResult",
    "LoadedModel",
    "ModelInfo",
    "OllamaBackend",
    "OpenAICompatBackend",
    "RetryPolicy",
    "embed_with_retries",
    "generate_with_retries",
    "host_key",
    "host_limit_name",
    "machine_slot_readings",
    "make_backend",
    "stop_sending",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
