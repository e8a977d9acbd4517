"""A run stores its spec's path absolute: `show` builds the resume command from it where
the run stored no command line (a deployment's flow run, an older evalflow), and a path
stored as typed (`specs/s.yaml`) ran only from the folder the run was started in."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import select
from sqlmodel import Session

from evaluation.storage.db import make_engine
from evaluation.storage.models import Experiment
from evaluation.storage.no_results import resume_command
from flows.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_run_stores_its_specs_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    spec = {
        "name": "where",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": ["sim-small:1b"],
        "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
    }
    (tmp_path / "specs" / "s.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    database = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["--database", database, "-q", "run", "specs/s.yaml", "--limit", "1"]) == 0
    with Session(make_engine(database)) as session:
        row = session.exec(select(Experiment)).scalars().one()
    assert row.spec_path == str(tmp_path / "specs" / "s.yaml")
    assert resume_command(row) == f"evalflow run {tmp_path}/specs/s.yaml"
