"""tests/support/cpu_timeline.py: one line per test with its worker, times and CPU, a
child process's CPU counted in the test that ran it, and a summary of them."""

from __future__ import annotations

import json

import pytest

from tests.support.cpu_timeline import summary

pytest_plugins = ["pytester"]


def test_each_test_gets_a_line_with_its_process_tree_s_cpu(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeline = pytester.path / "timeline.jsonl"
    monkeypatch.setenv("CPU_TIMELINE", str(timeline))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the session below has none
    pytester.makepyfile(
        test_two=(
            "import subprocess, sys\n\n"
            "def test_child():\n"
            "    busy = 'import time\\nt = time.process_time()\\n"
            "while time.process_time() - t < 0.3: pass'\n"
            "    subprocess.run([sys.executable, '-c', busy], check=True)\n\n"
            "def test_quick():\n"
            "    pass\n"
        )
    )
    result = pytester.runpytest_inprocess("-p", "tests.support.cpu_timeline", "-n", "0")
    result.assert_outcomes(passed=2)
    child, quick = (json.loads(line) for line in timeline.read_text().splitlines())
    assert [child["id"], quick["id"]] == ["test_two.py::test_child", "test_two.py::test_quick"]
    assert child["tree"] >= 0.25 > quick["tree"]  # the child's CPU is its test's
    assert child["worker"] == "-" and child["start"] <= child["end"] <= quick["start"]
    said = summary(str(timeline), 1)
    assert said.startswith("2 tests, ") and "worker -: 2 tests" in said
    assert said.splitlines()[3].endswith("test_two.py::test_child")
