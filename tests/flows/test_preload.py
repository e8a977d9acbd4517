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
        "print('scipy.stats' in sys.modules)\n"
        "preload('no_such_module_x', 'tasks.compare').join()\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"], done.stdout
    assert done.stderr == ""  # the failed import did not escape the thread


def test_the_preloaded_stages_leave_matplotlib_to_the_report_drawing():
    """matplotlib (~27 MiB) loads when the report draws, so a run does not hold it through
    its comparison stage, the run's highest point of memory (issue 46)."""
    script = (
        "import sys\n"
        "from flows.evaluate import POST_GENERATION_MODULES\n"
        "from flows.preload import preload\n"
        "preload(*POST_GENERATION_MODULES).join()\n"
        "print('scipy.stats' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"], done.stdout
