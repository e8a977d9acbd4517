"""The read-only verbs answer at once: they never import scikit-learn, scipy's stats,
statsmodels or Prefect (seconds each on a loaded machine). `compare` reads a stored
comparison whose inputs are unchanged just as cheaply; only computing one needs the
statistics libraries. `view` serves a finished run's first page without them too, and
`--help` (every verb's parser registered) without even the database's libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.review_db import build_review_db

HEAVY = ("sklearn", "scipy.stats", "statsmodels", "prefect")
# What `--help` needs none of either: it only lists the verbs.
LIGHT = ("sqlalchemy", "pandas", "numpy", "yaml", "pydantic")

# Runs one verb in a fresh interpreter, then lists the heavy modules it imported and
# whether pandas was one of them (listing experiments needs no DataFrame).
PROBE = f"""
import json, sys
from flows.cli import main
code = main(sys.argv[1:])
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy, "pandas": "pandas" in sys.modules}}))
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
    answer, _ = probe(database_url, tmp_path, verb)
    assert (answer["code"], answer["heavy"]) == (0, [])
    assert answer["pandas"] is (verb[0] != "experiments")


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--all"],
        ["--markdown"],
        ["--baseline", "beta:3b t=0.7 tpl=plain"],
        ["--config", "toy-review:alpha:1b t=0 tpl=plain", "--config", "gamma:8b t=1 tpl=plain"],
    ],
    ids=lambda options: " ".join(options[:2]) or "default",
)
def test_compare_computes_once_then_reads_without_heavy_library(database_url, tmp_path, options):
    build_review_db(database_url)
    verb = ["compare", "toy-review", *options]
    computed, first = probe(database_url, tmp_path, verb)
    assert computed["code"] == 0 and "scipy.stats" in computed["heavy"]
    assert "prefect" not in computed["heavy"]  # no flow unless --publish
    read, again = probe(database_url, tmp_path, verb)
    assert (read["code"], read["heavy"]) == (0, [])
    assert again == first and "Comparison: toy-review" in first


# `evalflow view EXPERIMENT`, its serving replaced by one request for the summary page
# (where the command tells the reader to start), made in the same interpreter.
VIEW_PROBE = (
    """
import json, socket, sys
import flows.cli.view as view

def first_page(app, sock):
    from starlette.testclient import TestClient

    sock.close()
    page = TestClient(app, base_url="http://127.0.0.1:8766").get("/e/toy-review/summary")
    print(page.status_code, "toy-review" in page.text)

view.bind = lambda host, port: socket.socket()
view.serve = first_page
"""
    + PROBE
)


def test_view_serves_a_finished_runs_first_page_without_heavy_library(database_url, tmp_path):
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.view.stored import store_pages

    build_review_db(database_url)
    with session_scope(make_engine(database_url)) as session:
        store_pages(session, "toy-review")  # as a run's end stores them
    answer, printed = probe(database_url, tmp_path, ["view", "toy-review"], VIEW_PROBE)
    assert (answer["code"], answer["heavy"]) == (0, [])
    assert printed.splitlines()[-1] == "200 True"


def test_help_imports_neither_the_database_nor_the_data_libraries(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom flows.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY + LIGHT!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    assert "commands, by task" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def probe(database_url: str, cwd, verb: list[str], script: str = PROBE) -> tuple[dict, str]:
    """Run ``verb`` in a fresh interpreter: its exit code and heavy modules, its output."""
    out = subprocess.run(
        [sys.executable, "-c", script, "--database", database_url, *verb],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
    *printed, last = out.stdout.strip().splitlines()
    answer = json.loads(last)
    assert answer["code"] == 0, out.stderr
    return answer, "\n".join(printed)
