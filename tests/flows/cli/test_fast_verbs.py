"""The read-only verbs answer at once: they never import scikit-learn, scipy's stats,
statsmodels or Prefect (seconds each on a loaded machine). `compare` reads a stored
comparison whose inputs are unchanged just as cheaply; only computing one needs the
statistics libraries. `view` serves a finished run's first page without them too, and
`--help` (every verb's parser registered) without even the database's libraries."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.support.review_db import build_review_db

HEAVY = ("sklearn", "scipy.stats", "statsmodels", "prefect")
# What a verb that prints needs none of: the view's web stack, httpx, the report's plots
# (FastAPI alone is ~0.11 s of CPU, its OpenAPI models).
WEB = ("fastapi", "starlette", "jinja2", "uvicorn", "httpx", "matplotlib")
# What `--help` needs none of either: it only lists the verbs.
LIGHT = ("sqlalchemy", "pandas", "numpy", "yaml", "pydantic")

# Runs one verb in a fresh interpreter, then lists the heavy modules it imported and
# whether pandas was one of them (listing experiments needs no DataFrame).
PROBE = f"""
import json, sys
from flows.cli import main
code = main(sys.argv[1:])
heavy = [m for m in {HEAVY!r} if m in sys.modules]
web = [m for m in {WEB!r} if m in sys.modules]
from evaluation.storage.db import EVALUATION_TABLES
built = [t.__name__ for t in EVALUATION_TABLES if t.__pydantic_complete__]
print(json.dumps({{"code": code, "heavy": heavy, "web": web, "pandas": "pandas" in sys.modules,
                  "numpy": "numpy" in sys.modules, "built": built,
                  "yaml": "yaml" in sys.modules}}))
"""


def test_read_only_verbs_import_no_heavy_library(database_url, tmp_path):
    """The verbs run one after another in one fresh interpreter (a start-up each cost
    seconds): after each, still no heavy library, nor the web stack; `experiments` and
    `show`, run first, not even pandas."""
    build_review_db(database_url)
    verbs = [
        ["experiments"],
        ["show", "toy-review"],
        ["export", "toy-review", "--level", "generations", "--level", "scores"],
        ["export", "toy-review", "--level", "aggregates", "--format", "json"],
    ]
    answers = probe_each(database_url, tmp_path, verbs)
    assert [(a["code"], a["heavy"]) for a in answers] == [(0, [])] * len(verbs), answers
    assert [a["pandas"] for a in answers[:2]] == [False, False]  # nor listing nor a leaderboard
    assert [a["web"] for a in answers] == [[]] * len(verbs), answers


def test_show_of_part_of_the_suite_imports_no_scipy(database_url, tmp_path):
    """A config that ran part of its suite gets a full-suite estimate under the
    leaderboard (its subset's plain mean with a t interval, no item bank): computed
    without any of scipy (its import cost `show` more than the rest of its work)."""
    db = build_review_db(database_url)
    with db.engine.begin() as connection:  # one generation of one config failed
        connection.exec_driver_sql(
            "UPDATE generations SET status = 'failed' WHERE id = (SELECT min(id) FROM generations)"
        )
    answer, printed = probe(database_url, tmp_path, ["show", "toy-review"], SCIPY_PROBE)
    assert answer["code"] == 0
    assert "subset mean from 7 of 8 cases" in printed
    assert answer["scipy"] is False


def test_show_prints_the_stored_estimates_without_numpy(database_url, tmp_path):
    """Where a run's end stored the view's pages, `show` prints the full-suite estimates
    from them: the same text as computed, without numpy (~0.1 s of its start-up)."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.view.stored import store_pages

    db = build_review_db(database_url)
    with db.engine.begin() as connection:  # one generation of one config failed
        connection.exec_driver_sql(
            "UPDATE generations SET status = 'failed' WHERE id = (SELECT min(id) FROM generations)"
        )
    computed, computed_text = probe(database_url, tmp_path, ["show", "toy-review"])
    with session_scope(make_engine(database_url)) as session:
        store_pages(session, "toy-review")  # as a run's end stores them
    stored, stored_text = probe(database_url, tmp_path, ["show", "toy-review"])
    assert "exact_match on each config's cases run" in computed_text  # no bank: subset means
    assert stored_text == computed_text
    assert (computed["numpy"], stored["numpy"]) == (True, False)
    assert stored["heavy"] == []


def test_show_builds_no_tables_validator(database_url, tmp_path):
    """`show` reads rows through SQLAlchemy only: pydantic's validator and serializer of
    no table is built (``storage.models.Table``: made on first use, ~0.03 s of every
    database verb's start-up for the 37 tables when made with their classes)."""
    build_review_db(database_url)
    answer, printed = probe(database_url, tmp_path, ["show", "toy-review"])
    assert "toy-review" in printed
    assert answer["built"] == []


@pytest.mark.parametrize("verb", ["show", "view"])
def test_show_and_view_read_results_without_the_yaml_reader(database_url, tmp_path, verb):
    """Stored results are read without PyYAML and the spec's models (~0.03 s of every
    database verb's start-up): the storage layer's impossible-rate rule takes its factor
    from the backends' base, whose spec types are annotations only."""
    build_review_db(database_url)
    script = VIEW_PROBE if verb == "view" else PROBE
    answer, printed = probe(database_url, tmp_path, [verb, "toy-review"], script)
    assert "toy-review" in printed
    assert answer["yaml"] is False


def test_show_scans_the_generations_per_config_once(database_url, capsys):
    """Its heading's coverage and whether a config ran part of the suite (the estimates
    under the board) come of one grouped scan of the generations (a second one cost
    ~0.03 s of `show` at 100,000 generations)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from flows.cli import main

    build_review_db(database_url)
    scans = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if re.search(r"FROM generations\b.*GROUP BY generations\.config_hash", statement, re.S):
            scans.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert main(["--database", database_url, "show", "toy-review"]) == 0
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert "toy-review" in capsys.readouterr().out
    assert len(scans) == 1, scans


SCIPY_PROBE = PROBE.replace('"pandas": "pandas" in sys.modules', '"scipy": "scipy" in sys.modules')


COMPARE_OPTIONS = [
    [],
    ["--all"],
    ["--markdown"],
    ["--baseline", "beta:3b t=0.7 tpl=plain"],
    ["--config", "toy-review:alpha:1b t=0 tpl=plain", "--config", "gamma:8b t=1 tpl=plain"],
]


def test_compare_computes_once_then_reads_without_heavy_library(database_url, tmp_path):
    """Every option set computed in one interpreter (the first needs scipy's stats, none
    Prefect), then every one read back in a fresh one: each answer the same, and no heavy
    library imported by any (a comparison recomputed, or stored over another's, would)."""
    build_review_db(database_url)
    verbs = [["compare", "toy-review", *options] for options in COMPARE_OPTIONS]
    computed = probe_each(database_url, tmp_path, verbs)
    assert [a["code"] for a in computed] == [0] * len(verbs), computed
    assert "scipy.stats" in computed[0]["heavy"]
    assert "prefect" not in computed[-1]["heavy"]  # no flow unless --publish
    read = probe_each(database_url, tmp_path, verbs)
    assert [(a["code"], a["heavy"]) for a in read] == [(0, [])] * len(verbs), read
    for verb, first, again in zip(verbs, computed, read, strict=True):
        assert again["printed"] == first["printed"], verb
        assert "Comparison: toy-review" in first["printed"], verb


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
    print(page.status_code, "toy-review" in page.text, 'id="estimates"' in page.text,
          len(opened), "pydantic.v1" in sys.modules)

view.bind = lambda host, port: socket.socket()
view.serve = first_page
import evaluation.storage.db as db
opened, open_database = [], db.open_database
db.open_database = lambda *args, **kwargs: opened.append(args) or open_database(*args, **kwargs)
"""
    + PROBE
)


def test_view_serves_a_finished_runs_first_page_without_heavy_library(database_url, tmp_path):
    """Its full-suite estimates too (a config ran part of the suite): read back as the
    run's end stored them, with neither pandas nor numpy; the database opened once (the
    name is looked up in the one that serves it: each opening checks the schema); no
    pydantic.v1 (FastAPI imports it to make a typed route argument's field)."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.view.stored import store_pages

    db = build_review_db(database_url)
    with db.engine.begin() as connection:  # one generation of one config failed
        connection.exec_driver_sql(
            "UPDATE generations SET status = 'failed' WHERE id = (SELECT min(id) FROM generations)"
        )
    with session_scope(make_engine(database_url)) as session:
        store_pages(session, "toy-review")  # as a run's end stores them
    answer, printed = probe(database_url, tmp_path, ["view", "toy-review"], VIEW_PROBE)
    assert (answer["code"], answer["heavy"]) == (0, [])
    assert printed.splitlines()[-1] == "200 True True 1 False"
    assert (answer["pandas"], answer["numpy"]) == (False, False)


def test_view_of_a_run_with_no_estimates_imports_no_numpy(database_url, tmp_path):
    """Every config ran every case: the summary has no full-suite estimates (no metric to
    word them by), and asking whether that no-metric is a corpus metric loaded the
    metrics registry, numpy with it (~0.1 s of the first page)."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.view.stored import store_pages

    build_review_db(database_url)
    with session_scope(make_engine(database_url)) as session:
        store_pages(session, "toy-review")  # as a run's end stores them
    answer, printed = probe(database_url, tmp_path, ["view", "toy-review"], VIEW_PROBE)
    assert printed.splitlines()[-1] == "200 True False 1 False"  # no estimates section
    assert (answer["code"], answer["heavy"], answer["numpy"]) == (0, [], False)


WEB_PROBE = PROBE.replace(
    '"pandas": "pandas" in sys.modules',
    '"web": [m for m in ("fastapi", "jinja2", "starlette") if m in sys.modules]',
)


def test_status_imports_no_web_framework(database_url, tmp_path):
    """`status` prints the facts the monitor's pages show, read without the pages:
    FastAPI and Jinja2 (~0.15 s of its start-up) stay out."""
    build_review_db(database_url)
    answer, printed = probe(database_url, tmp_path, ["status", "toy-review"], WEB_PROBE)
    assert printed.startswith("toy-review: completed")
    assert (answer["heavy"], answer["web"]) == ([], [])


MONITOR_PROBE = VIEW_PROBE.replace('"/e/toy-review/summary"', '"/?key=" + app.state.key').replace(
    "'id=\"estimates\"' in page.text", "'id=\"start-form\"' in page.text"
)


@pytest.mark.parametrize("profile", [None, 'PREFECT_API_URL = "http://127.0.0.1:9/api"'])
def test_monitors_first_page_imports_prefect_only_where_a_server_may_be_set(
    database_url, tmp_path, monkeypatch, profile
):
    """The home page asks whether a Prefect server is set (its start and cancel buttons):
    Prefect's settings import Prefect (~1 s of CPU), needed only where some setting may
    name one (``_prefect_check.api_url_may_be_set``): here a profile."""
    build_review_db(database_url)
    home = tmp_path / "prefect-home"
    home.mkdir()
    if profile:
        (home / "profiles.toml").write_text(f'active = "s"\n[profiles.s]\n{profile}\n')
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    answer, printed = probe(database_url, tmp_path, ["monitor"], MONITOR_PROBE)
    buttons = bool(profile)
    assert printed.splitlines()[-1] == f"200 True {buttons} 1 False"
    assert ("prefect" in answer["heavy"]) is bool(profile)


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


# Runs several verbs one after another in one fresh interpreter: after each, what it
# printed, its exit code, and the heavy modules imported so far.
PROBE_EACH = f"""
import contextlib, io, json, sys
from flows.cli import main
answers = []
for verb in json.loads(sys.argv[1]):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(sys.argv[2:] + verb)
    heavy = [m for m in {HEAVY!r} if m in sys.modules]
    web = [m for m in {WEB!r} if m in sys.modules]
    answers.append(
        {{"code": code, "heavy": heavy, "web": web, "pandas": "pandas" in sys.modules,
          "printed": printed.getvalue()}}
    )
print(json.dumps(answers))
"""


def probe_each(database_url: str, cwd, verbs: list[list[str]]) -> list[dict]:
    """Run ``verbs`` in order in one fresh interpreter: per verb, its exit code, output
    and the heavy modules imported by then."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE_EACH, json.dumps(verbs), "--database", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


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


# The monitor's page, and whether a score of it was coloured (``score_class``).
COLOURED_PROBE = MONITOR_PROBE.replace(
    '"pydantic.v1" in sys.modules)',
    '"pydantic.v1" in sys.modules, \'class="pass"\' in page.text)',
)


def test_monitors_first_page_colours_its_scores_without_numpy(database_url, tmp_path):
    """The home page colours each score of its table by the metric's better direction:
    asking the metrics registry for it imported every scorer and numpy (~0.1 s of the
    page's CPU); a built-in metric's is read from its table, as `show` reads it."""
    build_review_db(database_url)
    answer, printed = probe(database_url, tmp_path, ["monitor"], COLOURED_PROBE)
    assert printed.splitlines()[-1] == "200 True False 1 False True"
    assert (answer["heavy"], answer["numpy"]) == ([], False)
