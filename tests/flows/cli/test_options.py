"""The command line's own options: --version, --help with defaults and an example for
every verb, global options before or after the verb, and what -q / -v let through."""

from __future__ import annotations

import logging
import os
from importlib.metadata import version

import prefect
import pytest

from flows.cli import main
from flows.cli.app import EXAMPLES, _verbs, build_parser
from flows.cli.logs import _Verbosity
from tests.support.review_db import build_review_db


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"evalflow {version('evalflow')}"


def test_every_verb_has_an_example_and_states_its_defaults(capsys):
    parser = build_parser()
    verbs = dict(_verbs(parser))
    assert set(verbs) - {"accept", "withdraw"} <= set(EXAMPLES)  # baseline's verbs: their own
    for name, verb in verbs.items():
        text = verb.format_help()
        if name in EXAMPLES:
            assert f"example:\n  {EXAMPLES[name]}" in text, name
        else:
            assert "example:\n  evalflow " in text, name
        assert "--database" in text and "-q, --quiet" in text, name
    review = verbs["review"].format_help()
    assert "(default: 8765)" in review and "(default: 0)" in review
    assert "(default 10)" in review and "(default: 10)" not in review  # said once
    assert "(default: holm)" in verbs["compare"].format_help()


def test_global_options_are_accepted_after_the_verb(database_url, capsys):
    build_review_db(database_url)
    assert main(["experiments", "--database", database_url, "-q"]) == 0
    assert "toy-review" in capsys.readouterr().out
    # before the verb still works, and an option after the verb wins
    missing = "sqlite:///" + os.path.join(os.path.dirname(database_url[10:]), "none.db")
    assert main(["--database", missing, "show", "toy-review", "--database", database_url]) == 0
    assert "Leaderboard: toy-review" in capsys.readouterr().out
    assert main(["--database", database_url, "show", "toy-review", "-v"]) == 0


def test_quiet_and_verbose_are_exclusive(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["show", "x", "-q", "-v"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _record(pathname: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("prefect.task_runs", level, pathname, 1, "msg", None, None)


@pytest.mark.parametrize(
    ("level", "prefects_info", "evalflows_info"),
    [(-1, False, False), (0, False, True), (1, True, True)],
    ids=["quiet", "default", "verbose"],
)
def test_verbosity_keeps_evalflows_progress_and_drops_prefects_own_info(
    level, prefects_info, evalflows_info
):
    prefect_file = os.path.join(os.path.dirname(prefect.__file__), "task_engine.py")
    ours = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tasks", "sweep.py")
    keep = _Verbosity(level)
    assert keep.filter(_record(prefect_file)) is prefects_info
    assert keep.filter(_record(ours)) is evalflows_info
    for who in (prefect_file, ours):  # warnings and errors always reach the terminal
        assert keep.filter(_record(who, logging.WARNING))
        assert keep.filter(_record(who, logging.ERROR))


def test_a_warning_the_display_counts_stays_off_the_terminal_while_it_is_drawn():
    """At 80 columns "11 generations failed, never answered: ..." (241 columns) wrapped
    over four rows above the live line, which counts them ("20/20, 11 failed") as the
    run's summary says them: off the terminal while the display is drawn, shown without
    it (-q, a pipe); other warnings always shown."""
    from evaluation.wording import ON_THE_DISPLAY

    keep = _Verbosity(0)
    counted = _record("sweep.py", logging.WARNING)
    setattr(counted, ON_THE_DISPLAY, True)
    assert keep.filter(counted) and keep.filter(_record("sweep.py", logging.WARNING))
    keep.displayed = True
    assert not keep.filter(counted) and keep.filter(_record("sweep.py", logging.WARNING))
    verbose = _Verbosity(1)
    verbose.displayed = True
    assert verbose.filter(counted)  # -v: every line


def test_run_help_says_time_scale_multiplies_each_calls_latency():
    """It said "share of simulated latency really slept (0 to 100)": a share is at most 1,
    while each call sleeps latency × time_scale (docs/simulated-backend.md)."""
    text = " ".join(dict(_verbs(build_parser()))["run"].format_help().split())
    assert "share of simulated latency" not in text
    assert "each call sleeps its simulated latency × this factor (0: no sleep; 1: real time" in text


@pytest.mark.parametrize("name", ["sub/", "-", f"{'a' * 300}.yaml"])
def test_write_spec_refuses_a_folder_a_dash_and_a_name_too_long_writing_nothing(
    name, tmp_path, monkeypatch, capsys
):
    """`sub/` wrote a file `sub`, `-` a file `-`; a name too long for the system was a
    traceback and exit 1. Each is one line, exit 2, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["recommend", "qa", "--write-spec", name])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: evalflow recommend: argument --write-spec: expected ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


class PrefectConsoleHandler(logging.Handler):
    """Stands in for Prefect's console handler (found by its class name): what it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.shown.append(record.getMessage())


@pytest.mark.parametrize(
    "argv", [["retrain"], ["rescore", "nc-real"], ["compare", "nc-real", "--publish"]]
)
def test_flows_whose_result_says_it_keep_their_info_lines_off_the_terminal(
    argv, monkeypatch, capsys
):
    """The newcomer's F8: on a terminal `retrain` and `rescore` printed Prefect INFO lines
    (`... | INFO | Task run 'load-training-frame-b75' - training frame: ...`, ~330 wide,
    repeating the result) before their own result; `run` keeps them off the terminal
    (`compare --publish` too, each verdict an INFO line above its table: the recheck).
    Warnings still show, and -v shows every line."""
    import contextlib
    import importlib
    import sys
    import types

    from evaluation import compare
    from flows import run_control
    from flows.cli import _database, rescore, selection, stats

    # Importing Prefect's flow engine sets up its logging: the commands import it before
    # they set the console's filters (retrain and rescore keep SIGTERM from it: F7)
    importlib.import_module("prefect.flow_engine")

    console = PrefectConsoleHandler()
    monkeypatch.setattr(logging.getLogger(), "handlers", [console])
    log = logging.getLogger("tests.flow_info")
    monkeypatch.setattr(log, "level", logging.INFO)

    def flow(**_: object) -> dict:
        log.info("training frame: 108 generations of 8 configs")
        log.warning("a warning")
        retrained = {"reason": "promoted", "promoted": True, "version_id": 2, "generations": 108}
        compared = {
            "run_label": "nc-real",
            "simulated": False,
            "comparisons": [],
            "verdicts": {},
            "artifacts": {"verdicts": "nc-real-verdicts"},  # what --publish says it wrote
        }
        return retrained | compared | {"report": ""}

    for module, name in (
        ("flows.retrain_selector", "retrain_selector"),
        ("flows.rescore", "rescore"),
        ("flows.compare", "compare"),
    ):
        monkeypatch.setitem(sys.modules, module, types.SimpleNamespace(**{name: flow}))
    monkeypatch.setattr(run_control, "prefect_api", contextlib.nullcontext)
    monkeypatch.setattr(selection, "_too_little_to_train_on", lambda args: None)
    monkeypatch.setattr(rescore, "_check_rescore", lambda *a: None)
    monkeypatch.setattr(_database, "refuse_an_experiment_of_a_fresh_home", lambda args: None)
    board = types.SimpleNamespace(notes=())  # no NOT SCORED line under it
    shown = (board, "Leaderboard: nc-real")
    monkeypatch.setattr(rescore, "stored_leaderboard", lambda args, name: shown)
    monkeypatch.setattr(compare, "render_comparison_text", lambda *a, **k: "Paired: nc-real")
    for reader in ("_dropped", "_estimates", "_stopped"):
        monkeypatch.setattr(stats, reader, lambda args: [])
    monkeypatch.setattr(stats, "_calibrated", lambda args: "")
    assert main(argv) == 0
    assert console.shown == ["a warning"]
    out = capsys.readouterr().out
    assert out.startswith(("selector v2 trained on 108", "Leaderboard", "Paired: nc-real"))
    assert main([*argv, "-v"]) == 0
    assert console.shown[1:] == ["training frame: 108 generations of 8 configs", "a warning"]
