"""Issue 46: the start-up verbs start without Python's cyclic garbage collector (its
collections over the objects the database layer's imports make were ~0.1 s of `show`'s
~0.55 s of CPU); the verbs that go on have it back once started; every other verb keeps
it throughout (`flows/cli/_collector.py`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flows.cli import _collector
from flows.cli.app import main
from tests.flows.cli.test_fast_verbs import probe
from tests.support.review_db import build_review_db

# `evalflow` as its executable runs it (console_main), in a fresh interpreter: whether
# the collector ran while the command did, and whether it is on at its end.
EXECUTABLE = """
import gc, json, sys
from flows.cli import console_main
sys.argv = ["evalflow", *sys.argv[1:]]
gc.collect()  # this script's own objects: none due before the command pauses it
before = sum(s["collections"] for s in gc.get_stats())
code = console_main()
after = sum(s["collections"] for s in gc.get_stats())
print(json.dumps({"code": code, "collections": after - before, "on": gc.isenabled()}))
"""


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as a test found it, and nothing frozen before or after (a command
    run in this process, `console_main`, leaves its heap frozen)."""
    was = gc.isenabled()
    gc.unfreeze()
    yield
    _collector._paused = False
    gc.unfreeze()
    if was:
        gc.enable()


def test_show_runs_without_a_collection(database_url, tmp_path):
    """It failed before: the collector ran ~260 times while `show` imported and read."""
    build_review_db(database_url)
    answer, printed = probe(database_url, tmp_path, ["show", "toy-review"], EXECUTABLE)
    assert "toy-review" in printed
    assert (answer["collections"], answer["on"]) == (0, False)


def test_any_other_verb_keeps_the_collector(database_url, tmp_path):
    """`export` here (a million generations in DataFrames); `run` holds a sweep for hours."""
    build_review_db(database_url)
    out = str(tmp_path / "out")
    answer, _ = probe(database_url, tmp_path, ["export", "toy-review", "--out", out], EXECUTABLE)
    assert answer["on"] is True
    assert answer["collections"] > 0


def test_only_the_start_up_verbs_pause_it(collector):
    _collector.pause_for("run")
    assert gc.isenabled() and not _collector.paused()
    _collector.pause_for(None)  # --help
    assert gc.isenabled()
    _collector.resume()  # not paused: nothing frozen
    assert gc.get_freeze_count() == 0
    _collector.pause_for("view")
    assert not gc.isenabled() and _collector.paused()


def test_serving_has_the_collector_back_with_start_up_frozen(collector, monkeypatch):
    """`view` and `monitor` serve for hours: collected while they serve, what their
    start-up made never walked again."""
    import socket

    import uvicorn

    from flows.cli._serving import serve

    seen = []
    monkeypatch.setattr(
        uvicorn.Server,
        "run",
        lambda self, sockets: seen.append((gc.isenabled(), gc.get_freeze_count())),
    )
    _collector.pause_for("view")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    serve(lambda scope, receive, send: None, sock)
    ((on, frozen),) = seen
    assert on and frozen > 0
    assert not _collector.paused()


def test_a_static_export_has_the_collector_back(collector, database_url, tmp_path, monkeypatch):
    """`view --export` writes a page per generation: not a start-up."""
    import evaluation.view.static_export as static_export

    build_review_db(database_url)
    seen = []
    export_view = static_export.export_view
    monkeypatch.setattr(
        static_export,
        "export_view",
        lambda *args: seen.append(gc.isenabled()) or export_view(*args),
    )
    _collector.pause_for("view")
    out = tmp_path / "pages"
    assert main(["--database", database_url, "view", "toy-review", "--export", str(out)]) == 0
    assert seen == [True]
    assert (out / "summary.html").exists()


def test_a_command_leaving_by_system_exit_leaves_its_heap_frozen(collector, monkeypatch):
    """`serve` stopped by SIGTERM leaves by SystemExit (Prefect's runner's
    ``sys.exit(0)``), past ``console_main``'s freeze: Python's exit then collected every
    object still alive, ~0.95 s of CPU and 6-12 s of the stop at load 15-20 (the docs
    said 5 s in all). That way out freezes them too."""
    from flows.cli import app

    def stopped_by_sigterm() -> int:
        raise SystemExit(0)

    monkeypatch.setattr(app, "main", stopped_by_sigterm)
    with pytest.raises(SystemExit):
        app.console_main()
    assert gc.get_freeze_count() > 0
