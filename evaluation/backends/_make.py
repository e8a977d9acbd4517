"""The backend factory: ``make_backend`` picks the backend for a HostSpec's kind."""

from __future__ import annotations

from typing import Any

from evaluation.backends.base import Backend
from evaluation.errors import SpecError
from evaluation.spec import HostSpec, Limits


def make_backend(host: HostSpec, limits: Limits, **kw: Any) -> Backend:
    """The backend for ``host.kind``; HTTP backends take their timeouts from ``limits``,
    extra keywords go to the constructor (e.g. ``client=`` or the simulated ``suites=``)."""
    if host.kind == "ollama":
        from evaluation.backends.ollama import OllamaBackend

        return OllamaBackend(host, **_timeouts(limits), **kw)
    if host.kind == "openai":
        from evaluation.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(host, **_timeouts(limits), **kw)
    if host.kind == "simulated":
        from evaluation.backends.simulated import SimulatedBackend

        return SimulatedBackend(host, **kw)
    raise SpecError(f"unknown backend kind {host.kind!r}", field="hosts.kind")


def _timeouts(limits: Limits) -> dict[str, float]:
    return {
        "timeout_s": limits.request_timeout_s,
        "first_request_timeout_s": limits.first_request_timeout_s,
    }
