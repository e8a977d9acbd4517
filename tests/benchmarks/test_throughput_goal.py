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


def test_a_run_of_bare_wire_k_alone_is_the_bar(goal, capsys):
    """At 256 slots the bare client runs as bare-wire:4 only: evalflow's rate against it."""
    bare = goal.Figures("bare-wire:4", 800, wall_s=2.0, cpu_s=0.8)
    bare.host = {"rate": 4000.0, "requests": 800}
    ours = goal.Figures("evalflow:4", 800, wall_s=9.0, cpu_s=8.0)
    ours.host = {"rate": 3000.0, "requests": 800}
    goal.report([bare, ours], 256, 50.0)
    out = capsys.readouterr().out
    assert "against bare-wire:4" in out
    row = next(line for line in out.splitlines() if line.startswith("evalflow:4"))
    assert row.split(" | ")[5:9] == ["10.00", "0.00", "3000", "0.75"]  # x bare, ..., vs bare
