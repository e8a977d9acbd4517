"""A simulated embedding request's latency: apart from the simulated backend (numpy), so
that what runs a pipeline's calls (``evaluation.run._pipelines``) loads no numpy for it
(a lane worker's start: ~0.15 s of CPU)."""

from __future__ import annotations


def embed_latency_s(texts: int) -> float:
    """The simulated latency of one embedding request of ``texts`` texts."""
    return 0.02 + 0.002 * texts if texts else 0.0
