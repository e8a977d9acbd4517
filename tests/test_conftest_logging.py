"""A logging handler made while pytest captures output keeps pytest's stream: absl's
(imported with rouge_score, tests/evaluation/test_metrics.py) closes it when closed, and
Prefect's first logging setup (its import) closes every handler (logging.config.dictConfig).
Where that first import came in a test with its own capture (capsys), it closed the
session's capture: "ValueError: I/O operation on closed file ... lost sys.stderr", the
whole session lost (tests/conftest.py keeps absl's handler off pytest's streams)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO

pytest_plugins = ["pytester"]


def test_prefect_first_imported_under_capsys_after_absl_keeps_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("absl.logging")
    pytester.makepyfile(
        test_1_collects_absl="import absl.logging\n\ndef test_absl():\n    pass\n",
        test_2_imports_prefect=(
            "def test_prefect(capsys):\n"
            "    from prefect import flow  # noqa: F401\n"
            "    print('said')\n"
            "    assert capsys.readouterr().out == 'said\\n'\n"
        ),
    )
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(REPO), path))))
    result = pytester.runpytest_subprocess(
        "-p", "tests.conftest", "-n", "0", "-p", "no:cacheprovider",
        "test_1_collects_absl.py", "test_2_imports_prefect.py",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
