"""Fixtures shared by the flow tests that start real `evalflow run` processes."""

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
