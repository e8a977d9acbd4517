"""A run whose disk fills: it cannot store why it failed in the database either, and
`experiments` said `crashed ... process is gone` while the disk was still full. The
run keeps its end in the note it reserved beside the database when it claimed the
experiment (evaluation/storage/run_notes.py), and `experiments` reports it. A real
filesystem that fills (a 2 MiB tmpfs, mounted as root), a real process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (root)")

RUN = """
import sys
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment
from flows import run_control

database = sys.argv[1]
engine = make_engine(database)
with session_scope(engine) as session:
    session.add(Experiment(name="full", suite="s", task_type="qa", status="running"))
process, _ = run_control.claim(engine, "full", wait=False)
print("claimed", flush=True)
sys.stdin.readline()  # the test fills the disk meanwhile
try:
    with session_scope(engine) as session:  # what the run was writing when the disk filled
        session.add(Experiment(name="x" * 100_000, suite="s", task_type="qa"))
except Exception as exc:
    print("reason:", run_control.record_failure(database, "full", process, exc), flush=True)
"""


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # no space left
        pass
    finally:
        os.close(fd)


def test_a_run_that_fills_its_disk_is_failed_with_its_reason_while_the_disk_is_full(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        database = f"sqlite:///{disk / 'results.db'}"
        env = os.environ | {"EVALFLOW_DATABASE_URL": database}
        run = subprocess.Popen(
            [sys.executable, "-c", RUN, database],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert run.stdout.readline().strip() == "claimed", run.stdout.read()
        fill(disk)
        output, _ = run.communicate("go\n", timeout=120)
        listing = subprocess.run(
            [sys.executable, "-m", "flows.cli", "experiments"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        still_full = os.statvfs(disk).f_bavail == 0

    assert run.returncode == 0, output
    assert "not stored in the database: database or disk is full" in output
    assert "nowhere else" not in output, output
    assert still_full
    assert listing.returncode == 0, listing.stderr
    (line,) = [row for row in listing.stdout.splitlines() if row.startswith("full ")]
    assert " failed " in line and "crashed" not in line and "process" not in line, line
    assert "database or disk is full" in line, line
