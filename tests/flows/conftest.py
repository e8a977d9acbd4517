"""Fixtures shared by the flow tests: those that start real `evalflow run` processes, and
those that stop `serve` on the shared test server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

MIGRATE = """
from flows.embedded_server import EmbeddedServer
server = EmbeddedServer()
server.start()
try:
    server.wait_ready()
finally:
    server.stop(timeout_s=30)
"""


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory) -> Path:
    """A Prefect home whose database an embedded server has created and migrated (it
    takes seconds of CPU per fresh home): each test copies it, so one serves the whole
    session (test_run_lifecycle and test_cancel) rather than one per module."""
    from tests.flows.test_run_lifecycle import START_S, environment

    home = tmp_path_factory.mktemp("prefect-template") / "prefect"
    env = environment(home.parent)
    subprocess.run([sys.executable, "-c", MIGRATE], cwd=REPO, env=env, check=True, timeout=START_S)
    return home


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; they and their children are killed if still running."""
    from tests.flows.test_run_lifecycle import children, kill_all

    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        kill_all([process.pid, *children(process.pid)])


#: How long `serve`'s stop waits on the shared test server (``unhurried_stop``).
UNHURRIED_S = 600.0


@pytest.fixture
def unhurried_stop(monkeypatch) -> None:
    """`serve`'s stop given all the time it needs (``PAUSE_TIMEOUT_S``, ``PAUSE_CAP_S``):
    on the test server, shared by the session and loaded with the machine, its answers
    came past 5 s and a test of what the stop marks failed on how long it took. How long
    it waits is tested on the loop's clock (test_deployments)."""
    import deployments.serve as module

    monkeypatch.setattr(module, "PAUSE_TIMEOUT_S", UNHURRIED_S)
    monkeypatch.setattr(module, "PAUSE_CAP_S", UNHURRIED_S)
