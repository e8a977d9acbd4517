"""`evalflow run` starts without the post-generation stages' heavy libraries; they load
in the background while the hosts generate (flows/preload.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_the_evaluate_flow_starts_without_scipy_stats_or_matplotlib():
    script = (
        "import sys\n"
        "import flows.evaluate\n"
        "print(sorted(m for m in ('scipy.stats', 'matplotlib', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_preload_imports_in_the_background_and_leaves_errors_to_the_importer():
    script = (
        "import sys\n"
        "from flows.preload import preload\n"
        "print('matplotlib' in sys.modules)\n"
        "preload('no_such_module_x', 'tasks.report').join()\n"
        "print('matplotlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"], done.stdout
    assert done.stderr == ""  # the failed import did not escape the thread
