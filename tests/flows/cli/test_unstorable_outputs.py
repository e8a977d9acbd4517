"""A model's reply holding what no results database stores: a lone surrogate (JSON's
"\\ud800", newcomers' S2) failed the whole run on both databases as its chunk was
stored, a NUL (S3) on PostgreSQL, and every resume the same way (9 of 20 generations
stored, never more). Each is stored as U+FFFD and the run completes."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.conftest import REPO
from tests.support.databases import sqlite_or_postgres
from tests.support.standin_ollama import StandInConfig, echo_reply, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

CASES = 3
ODD = "lone \ud800 surrogate, a NUL\x00here and a pair \ud83d\ude00"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from sqlite_or_postgres(request.param, tmp_path / "results.db", "unstorable_outputs")


def reply(model: str, messages) -> str:
    return ODD if model.startswith("odd") else echo_reply(model, messages)


def test_a_reply_no_database_stores_is_stored_replaced_and_the_run_completes(tmp_path, url):
    models = ["odd:1b", "echo:1b"]
    spec = tmp_path / "spec.yaml"
    with running_standin(StandInConfig(models=tuple(models), reply=reply)) as standin:
        host = {"name": "local", "url": standin.url, "slots": 2}
        suite = str(REPO / "benchmarks/suites/qa-short.jsonl")
        fields = {"name": "odd", "suite": suite, "models": models, "metrics": ["contains"]}
        spec.write_text(yaml.safe_dump({**fields, "hosts": [host]}))
        code = main(["--database", url, "run", str(spec), "--limit", str(CASES), "-q"])
    assert code == 0
    with session_scope(make_engine(url)) as session:
        rows = session.exec(text("SELECT status, output FROM generations")).all()
    assert sorted(status for status, _ in rows) == ["ok"] * 2 * CASES
    odd = [output for _, output in rows if "lone" in output]
    assert odd == ["lone \ufffd surrogate, a NUL\ufffdhere and a pair \U0001f600"] * CASES
