"""The read-only verbs answer at once: they never import scikit-learn, scipy's stats,
statsmodels or Prefect (seconds each on a loaded machine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.review_db import build_review_db

HEAVY = ("sklearn", "scipy.stats", "statsmodels", "prefect")

# Runs one verb in a fresh interpreter, then lists the heavy modules it imported.
PROBE = f"""
import json, sys
from flows.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


@pytest.mark.parametrize(
    "verb",
    [
        ["experiments"],
        ["show", "toy-review"],
        ["export", "toy-review", "--level", "generations", "--level", "scores"],
        ["export", "toy-review", "--level", "aggregates", "--format", "json"],
    ],
    ids=lambda verb: " ".join(verb[:1] + verb[2:]),
)
def test_read_only_verbs_import_no_heavy_library(database_url, tmp_path, verb):
    build_review_db(database_url)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "--database", database_url, *verb],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer == {"code": 0, "heavy": []}, out.stderr
