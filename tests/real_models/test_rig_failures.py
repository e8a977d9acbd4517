"""The rig as a user meets it when something is off (issue 43 §5): ``PORT`` in the
environment does not move the server off ``--port``, and a server that fails is
reported by the end of its log, not by all of it."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.real_models import LOG_TAIL_LINES, _wait_ready, server_environment


def test_the_servers_environment_has_nothing_that_overrides_its_config(monkeypatch) -> None:
    server = pytest.importorskip("llama_cpp.server.__main__")
    source = inspect.getsource(server)
    for variable in ("PORT", "HOST", "CONFIG_FILE"):
        assert f'os.getenv("{variable}"' in source or f'os.environ.get("{variable}"' in source
        monkeypatch.setenv(variable, "1")
        assert variable not in server_environment()
    monkeypatch.setenv("EVALFLOW_HOME", "/kept")
    assert server_environment()["EVALFLOW_HOME"] == "/kept"


def test_a_server_that_exits_is_reported_by_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "llama-server.log"
    program = (
        "import sys\nfor i in range(2000): print(f'tensor {i}')\nprint('bind: in use')\nsys.exit(3)"
    )
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", program], stdout=out)
        proc.wait()
    with pytest.raises(RuntimeError) as failed:
        _wait_ready(proc, "http://127.0.0.1:9", log, timeout_s=60)
    message = str(failed.value)
    assert message.splitlines()[0].startswith("llama_cpp.server exited (3)")
    assert len(message.splitlines()) == 1 + LOG_TAIL_LINES
    assert message.splitlines()[-1] == "  bind: in use" and "tensor 1991" not in message
