"""throughput_goal.py stopped part way (a step's ``timeout`` on a lent machine sends
SIGTERM) still prints the figures of the clients it measured, not nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.benchmarks.conftest import _perf_module
from tests.conftest import REPO


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


def test_an_evalflow_runs_cpu_goes_by_phase_and_process_role(goal, tmp_path, capsys):
    """The phases: start, the host's busy span, its end, then the steps the run's log
    announces; each process counted in the role it was last seen in (the record writer
    is told apart once it holds the database open, after its first samples)."""
    day = time.mktime((2026, 11, 28, 0, 0, 0, 0, 0, -1))
    log = tmp_path / "run.log"
    log.write_text(
        "10:00:05.000 | INFO    | Flow run 'x' - goal-4000-1: generating…\n"
        "10:00:20.500 | INFO    | Flow run 'x' - goal-4000-1: scoring…\n"
        "10:00:22.000 | INFO    | Flow run 'x' - goal-4000-1: comparing configs…\n"
        "10:00:23.000 | INFO    | Flow run 'x' - goal-4000-1: writing report…\n"
    )
    marks = goal._phase_marks(log, (day + 36006, day + 36018))
    assert [phase for phase, _ in marks] == [
        *("start", "generation", "generation's end", "scoring", "compare", "report")
    ]
    watch = object.__new__(goal.TreeWatch)  # its samples, without its thread
    watch.roles = {1: "main", 2: "writer"}
    seconds = (0, 6, 18, 20.5, 22, 23, 25)
    watch.series = [(day + 36000 + s, 0.0) for s in seconds]
    cpu = [(0, 0), (2, 0), (3, 1), (3.5, 1.5), (4, 1.5), (5, 1.5), (6, 1.5)]
    watch.pid_series = [{1: main, 2: writer} for main, writer in cpu]
    phases = watch.phases(marks)
    assert phases["start"] == {"main": 2, "writer": 0}
    assert phases["generation"] == {"main": 1, "writer": 1}
    assert phases["report"] == {"main": 1, "writer": 0}
    run = goal.Figures("evalflow:2", 1000, cpu_s=8.0)
    run.phases = phases
    print(goal._phase_table(run))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "  evalflow:2: CPU ms/gen by phase | main | writer | all"
    assert out[2] == "    generation | 1.000 | 1.000 | 2.000"
    assert out[-1] == "    unsampled | 0.500"  # 8.0 s in all, 7.5 s sampled


def test_both_checkouts_are_compiled_before_anything_is_measured(goal, tmp_path, monkeypatch):
    """Where PYTHONDONTWRITEBYTECODE is set every evalflow process compiled evalflow's
    modules from source at its start (~1.25 s of CPU a command), which no user pays:
    the benchmark compiles each checkout first, its own folders only, and says so."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    after, before = tmp_path / "after", tmp_path / "before"
    for code in (after, before):
        (code / "pkg").mkdir(parents=True)
        (code / "pkg" / "mod.py").write_text("X = 1\n")
        (code / ".venv" / "lib").mkdir(parents=True)
        (code / ".venv" / "lib" / "dep.py").write_text("Y = 2\n")

    said = goal.compile_checkouts(after, before, after, None)

    for code in (after, before):
        assert list((code / "pkg" / "__pycache__").glob("mod.*.pyc"))
        assert not (code / ".venv" / "lib" / "__pycache__").exists()
    assert said.startswith("bytecode: compiled first") and "PYTHONDONTWRITEBYTECODE" in said
    assert said.count("(1 .py files)") == 2


def test_without_psutil_it_says_the_install_in_one_line(goal):
    """The README's install has no psutil (newcomers' nctput-1: a traceback); the line
    names the install docs/throughput.md gives before its commands."""
    script = REPO / "benchmarks/perf/throughput_goal.py"
    hide = "import runpy, sys; sys.modules['psutil'] = None; sys.argv[1:] = ['--help']; "
    ran = subprocess.run(
        [sys.executable, "-c", hide + f"runpy.run_path({str(script)!r}, run_name='__main__')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout) == (1, "")
    assert ran.stderr.splitlines() == [
        f"throughput_goal.py needs psutil, the bench extra: {goal.INSTALL}"
    ]
    assert goal.INSTALL in (REPO / "docs/throughput.md").read_text(encoding="utf-8")


def test_the_trees_peak_is_summed_in_rss_and_in_pss(goal, capsys):
    """Both sums are printed: RSS counts a page the tree's processes share once per
    process, PSS once (TreeWatch's text); each role's peak and the roles at the peak."""
    peak = goal.TreePeak()
    roles = {1: "main", 2: "server", 3: "workers", 4: "workers"}
    mib = 2**20
    peak.add({1: 200 * mib, 2: 190 * mib}, roles)
    by_role = peak.add({1: 150 * mib, 2: 190 * mib, 3: 50 * mib, 4: 50 * mib, 5: mib}, roles)
    peak.add({1: 300 * mib, 2: 80 * mib}, roles)
    assert by_role == {
        "main": 150 * mib,
        "server": 190 * mib,
        "workers": 100 * mib,
        "writer": 0,
        "other": mib,
    }
    assert peak.peak == 441 * mib
    assert peak.at_peak == by_role
    assert peak.peaks["main"] == 300 * mib and peak.peaks["workers"] == 100 * mib
    run = goal.Figures("evalflow:2", 1000, cpu_s=1.0, peak_rss_mib=580.0, peak_pss_mib=490.0)
    goal.report([run], 64, 20.0)
    head, row = capsys.readouterr().out.splitlines()[2:4]
    cells = dict(zip(head.split(" | "), row.split(" | "), strict=True))
    assert (cells["peak MiB"], cells["PSS"]) == ("580", "490")


def test_the_pages_two_processes_share_are_counted_once(goal):
    """Two idle processes of one interpreter share its libraries' pages: the RSS sum
    counts them twice, ``pages_once`` once, and never less than what each holds alone."""
    import psutil

    code = "import sys; print('ready', flush=True); sys.stdin.read()"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout.readline() == b"ready\n"  # started, and idle from here on
        procs = [psutil.Process(child.pid) for child in children]
        rss = sum(p.memory_info().rss for p in procs)
        uss = sum(p.memory_full_info().uss for p in procs)
        assert uss < goal.pages_once(procs) < rss
    finally:
        for child in children:
            child.communicate(b"")


def test_evalflow_runs_with_run_s_own_default_unless_told(goal, tmp_path):
    """Client ``evalflow`` runs `run` as a user does, no ``--workers`` (its default);
    ``evalflow:1`` asks for one process, ``evalflow:2`` for two lane workers."""
    spec, db = tmp_path / "spec.yaml", tmp_path / "r.db"
    assert "--workers" not in goal.evalflow_command(db, spec, "x")
    assert goal.evalflow_command(db, spec, "x", 1)[-2:] == ["--workers", "1"]
    assert goal.evalflow_command(db, spec, "x", 2)[-2:] == ["--workers", "2"]
