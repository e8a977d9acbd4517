"""The report's figures in tests (tests/conftest.py): one 1x1 PNG each, in the test
process and in the Python processes a test starts (tests/support/child_site), except in
tests marked report_figures, where a started process draws them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from matplotlib.figure import Figure

from tests.conftest import _ONE_PIXEL_PNG, REPO

_ENCODE = """
from matplotlib.figure import Figure
from evaluation.report.plots import png_data_uri
fig = Figure(figsize=(1, 1))
fig.add_subplot().plot([0, 1])
print(png_data_uri(fig))
"""


def _encoded_in_a_started_process() -> str:
    done = subprocess.run(
        [sys.executable, "-c", _ENCODE],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_a_started_process_encodes_one_pixel():
    from evaluation.report.plots import png_data_uri

    assert png_data_uri(Figure()) == _ONE_PIXEL_PNG
    assert _encoded_in_a_started_process() == _ONE_PIXEL_PNG


@pytest.mark.report_figures
def test_a_started_process_draws_in_tests_marked_report_figures():
    drawn = _encoded_in_a_started_process()
    assert drawn.startswith("data:image/png;base64,") and len(drawn) > 2 * len(_ONE_PIXEL_PNG)
