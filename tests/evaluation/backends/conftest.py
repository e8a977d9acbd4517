"""One stand-in Ollama server per test module, reset to a known state for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.standin_ollama import StandIn, StandInConfig, running_standin

FAST = StandInConfig(latency_ms=4.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def _standin_server() -> Iterator[StandIn]:
    with running_standin(FAST) as server:
        yield server


@pytest.fixture
def standin(_standin_server: StandIn) -> StandIn:
    """The module's stand-in, running, with fresh stats, no faults, the FAST config."""
    if not _standin_server.running:
        _standin_server.start()
    _standin_server.reset(FAST)
    return _standin_server
