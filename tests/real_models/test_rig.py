"""The rig as a program (``python -m tests.support.real_models``): however it is stopped,
the llama.cpp server it started does not outlive it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.support.real_models import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_stopping_the_rig_stops_its_server(stop, tmp_path):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    command = [sys.executable, "-m", "tests.support.real_models", "--port", str(free_port())]
    command += ["--threads", "1", "--folder", str(tmp_path)]
    # A PORT set for something else must not move the server off --port (issue 43 §5).
    env = os.environ | {"PORT": str(free_port())}
    rig = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    server = None
    try:
        for line in rig.stdout:
            if found := re.search(r"server pid (\d+)", line):
                server = int(found.group(1))
                break
        assert server is not None and _alive(server), "the rig never said it was serving"
        rig.send_signal(stop)
        rig.wait(timeout=30)
        assert _wait_gone(server), f"the llama.cpp server (pid {server}) outlived the rig"
    finally:
        if rig.poll() is None:
            rig.kill()
            rig.wait()
        if server is not None and _alive(server):  # what the old rig left behind
            os.kill(server, signal.SIGKILL)
