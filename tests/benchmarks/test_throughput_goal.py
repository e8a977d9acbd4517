"""throughput_goal.py stopped part way (a step's ``timeout`` on a lent machine sends
SIGTERM) still prints the figures of the clients it measured, not nothing."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.benchmarks.conftest import _perf_module


@pytest.fixture(scope="module")
def goal() -> Iterator[ModuleType]:
    yield from _perf_module("throughput_goal")


def test_a_stopped_run_shows_the_clients_measured(goal, capsys):
    shown: list[list[str]] = []

    def run_one(client: str):
        if client == "evalflow:4":
            raise SystemExit(143)  # what the SIGTERM handler raises
        return goal.Figures(client, 400, wall_s=1.5)

    with pytest.raises(SystemExit):
        goal.run_clients(
            ["bare-wire", "before:4", "evalflow:4", "evalflow:8"],
            run_one,
            lambda results: shown.append([r.client for r in results]),
        )
    assert shown == [["bare-wire", "before:4"]]
    assert "stopped: 2 of 4 clients measured" in capsys.readouterr().out


def test_sigterm_is_taken_once(goal):
    """``timeout`` signals the process, then its group: the second must not cut the report."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stopped:
            goal._terminated(signal.SIGTERM, None)
        assert stopped.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
