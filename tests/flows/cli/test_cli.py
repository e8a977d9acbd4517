"""The `evalflow` command line: plan, run, experiments, show, rescore, and clear errors."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from evaluation.storage.db import make_engine
from evaluation.storage.models import ComparisonRun, ExperimentRun, ViewPage
from evaluation.view import stored
from flows.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("prefect_harness")


def small_spec(tmp_path: Path, **overrides) -> Path:
    spec = {
        "name": "cli-test",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": ["sim-small:1b", "sim-large:8b"],
        "grid": {"temperature": [0.0]},
        "hosts": [{"name": "sim", "url": "simulated://local", "slots": 2, "kind": "simulated"}],
    } | overrides
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_plan_prints_configs_and_generation_count(tmp_path, capsys):
    assert main(["plan", str(small_spec(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "sim-small:1b" in out and "sim-large:8b" in out
    assert "72" in out  # 2 configs x 36 cases
    assert "SIMULATED" in out


def test_plan_estimates_a_simulated_sweep_at_the_time_scale_run_is_given(
    tmp_path, capsys, database_url, monkeypatch
):
    """A newcomer's `plan --time-scale 1` was refused, and plain `plan` said a simulated
    sweep has no duration, though `run --time-scale 1` sleeps each simulated latency. A
    config's figure is the mean latency its generations store, × the time scale."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    spec = small_spec(tmp_path)
    assert main(["plan", str(spec)]) == 0
    assert "no real generation time to estimate at time scale 0 (`--time-scale N`" in (
        capsys.readouterr().out
    )
    assert main(["--database", database_url, "run", str(spec)]) == 0
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        stored = conn.execute(
            "SELECT config_hash, avg(latency_s), count(*) FROM generations GROUP BY config_hash"
        ).fetchall()
    capsys.readouterr()
    argv = ["--database", database_url, "plan", str(spec), "--experiment", "again"]
    assert main([*argv, "--time-scale", "2"]) == 0
    out = capsys.readouterr().out
    assert "duration  ≈" in out and "sim: 72 generations on 2 slots" in out
    for config_hash, mean, n in stored:
        figure = f"{config_hash}  sim-"
        line = next(x for x in out.splitlines() if x.strip().startswith(figure))
        assert f"sim  {n} × {2 * mean:.2f} s  (simulated: the mean latency of {n} " in line
    # recheck G7: a host's ?time_scale=2, which a run given no --time-scale sleeps
    (tmp_path / "scaled").mkdir()
    sim = {"name": "sim", "url": "simulated://local?time_scale=2", "slots": 2}
    scaled = small_spec(tmp_path / "scaled", hosts=[sim | {"kind": "simulated"}])
    assert main(["--database", database_url, "plan", str(scaled), "--experiment", "again"]) == 0
    assert capsys.readouterr().out.split("duration")[1] == out.split("duration")[1]
    # With all of it stored there is nothing to estimate, at any time scale (a newcomer's
    # `plan --time-scale 1` after the demo said "at time scale 0").
    assert main(["--database", database_url, "plan", str(spec), "--time-scale", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 to go" in out and "duration  none: nothing left to generate" in out
    assert "time scale" not in out


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path, capsys, monkeypatch):
    """`evalflow plan … | head -6` printed "error: evalflow failed: BrokenPipeError …"
    and exited 1: the reader leaving is no error of the command's."""

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["plan", str(small_spec(tmp_path))]) == 141  # 128 + SIGPIPE, as a shell says
    assert "error" not in capsys.readouterr().err


def test_bad_spec_is_refused_with_the_field_and_no_traceback(tmp_path, capsys):
    spec = small_spec(tmp_path, grid={"temperature": [-0.5]})
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "grid.temperature[0]" in err
    assert "Traceback" not in err


def test_too_many_configs_are_refused_before_anything_runs(tmp_path, capsys):
    spec = small_spec(tmp_path, grid={"temperature": {"min": 0.0, "max": 1.0, "step": 0.001}})
    assert main(["plan", str(spec)]) == 2
    assert "max_configs" in capsys.readouterr().err


def test_run_then_list_show_and_rescore(tmp_path, capsys, database_url):
    spec = small_spec(tmp_path)
    assert main(["--database", database_url, "run", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out and "72 generated, 0 failed" in out
    assert "already done" not in out  # a first run resumed nothing
    # The next commands read the database the run wrote (they read the default one).
    assert f"evalflow view cli-test --database {database_url}\n" in out
    assert f"evalflow compare cli-test --database {database_url}\n" in out

    assert main(["--database", database_url, "experiments"]) == 0
    listing = capsys.readouterr().out
    assert "cli-test" in listing and "SIMULATED" in listing
    assert " completed   full " in listing  # the level the run recorded

    assert main(["--database", database_url, "show", "cli-test"]) == 0
    board = capsys.readouterr().out
    assert "exact_match" in board and "sim-large:8b" in board

    report = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("the report:")
    )
    assert "rougeL" not in Path(report).read_text()
    assert main(["--database", database_url, "rescore", "cli-test", "--metrics", "rougeL"]) == 0
    rescored = capsys.readouterr().out
    assert "rougeL" in rescored
    # the run's report and stored view pages read the new scores (recheck: rescore left
    # them stale, the report without rougeL)
    assert rescored.rstrip().endswith(f"The report, written again: {report}")
    assert "rougeL" in Path(report).read_text()
    engine = make_engine(database_url)
    with Session(engine) as session:
        fresh = stored._fingerprint(session, "cli-test")
        kept = session.exec(select(ViewPage.fingerprint).where(ViewPage.page == "summary")).one()
    engine.dispose()
    assert kept == fresh
    # The metric is added: the experiment's own stay on its leaderboard (issue 43 §5).
    assert main(["--database", database_url, "show", "cli-test"]) == 0
    board = capsys.readouterr().out
    assert "rougeL" in board and "exact_match" in board
    # Rescored, the comparison is too: the verdict `status` gives is the new first
    # metric's (it named the old #1 on the old comparison; F10 of a newcomer's report).
    assert main(["--database", database_url, "rescore", "cli-test", "--first", "rougeL"]) == 0
    capsys.readouterr()
    engine = make_engine(database_url)
    with Session(engine) as session:
        (compared,) = session.exec(select(ComparisonRun.verdicts)).all()
    engine.dispose()
    (rouge,) = [v["verdict"] for v in compared if v["metric"] == "rougeL"]
    assert main(["--database", database_url, "status", "cli-test"]) == 0
    assert f"  verdict: {rouge}" in capsys.readouterr().out


def test_the_mixed_metrics_advice_followed_puts_one_metric_first(database_url):
    """`recommend`'s note on experiments that put different metrics first advised
    `rescore EXPERIMENT --metrics M,...`, which adds M after the experiment's own: each
    kept its first metric, the one the selector reads quality from, and the retrain
    learned the same mix. The command the note prints, run on each experiment, now puts
    one metric first in all."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.training import training_frame
    from evaluation.suites import load_suite
    from selection._notes import quality_metric_note
    from selection.quality import quality_metric
    from tests.support.results_db import MISSING, add_experiment, make_config

    def firsts() -> dict[str, str]:
        with session_scope(make_engine(database_url)) as session:
            frame = training_frame(session, quality_metric, include_simulated=True)
        return frame.groupby("experiment")["quality_metric"].agg(lambda m: "+".join(set(m)))

    # two simulated runs with --limit 3, stored as a run stores them (not run: the
    # rescores the note advises are what is tested)
    suite = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")
    configs = [make_config("sim-small:1b"), make_config("sim-large:8b")]
    first_three = [1.0] * 3 + [MISSING] * (len(suite.cases) - 3)
    with session_scope(make_engine(database_url)) as session:
        for name, metrics in (
            ("cli-test", suite.default_metrics),  # the suite's metrics: exact_match first
            ("cli-contains", ("contains",)),
        ):
            scores = {config: dict.fromkeys(metrics, first_three) for config in configs}
            add_experiment(session, name, suite, scores, simulated=True).status = "completed"
    assert firsts().to_dict() == {"cli-contains": "contains", "cli-test": "exact_match"}
    note = quality_metric_note({"exact_match": 2, "contains": 2}, "qa")
    command = re.search(r"`evalflow (rescore EXPERIMENT [^`]*)`", note).group(1).split()
    for experiment in ("cli-test", "cli-contains"):
        argv = [experiment if word == "EXPERIMENT" else word for word in command]
        assert main(["--database", database_url, *argv]) == 0, argv
    assert firsts().to_dict() == {"cli-contains": "exact_match", "cli-test": "exact_match"}
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
        stored = dict(conn.execute("SELECT name, metrics FROM experiments").fetchall())
    assert stored["cli-test"].startswith('["exact_match", "contains"')  # order kept
    assert stored["cli-contains"] == '["exact_match", "contains"]'


def test_unknown_experiment_lists_the_known_ones(tmp_path, capsys, database_url):
    assert main(["--database", database_url, "run", str(small_spec(tmp_path))]) == 0
    capsys.readouterr()
    assert main(["--database", database_url, "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no experiment named 'nope'" in err and "cli-test" in err
    # where it looked: the experiment may be in a database the command was not given
    assert err.endswith(f"; the database searched: {database_url}\n"), err
    # compare finds its experiments its own way, trends its series: they say it too
    for verb in ("compare", "trends"):
        assert main(["--database", database_url, verb, "nope"]) == 2
        err = capsys.readouterr().err
        assert "'nope'" in err and "cli-test" in err, err
        assert err.endswith(f"; the database searched: {database_url}\n"), (verb, err)


@pytest.mark.parametrize("experiment", ["my-classify", "named-apart"])
def test_show_of_an_experiment_with_nothing_stored_yet_gives_runs_start_over_hint(
    database_url, capsys, experiment
):
    """`show` of an interrupted experiment printed "No results", exit 1, and a resume
    hint with `--experiment my-classify` that `run`'s own hint did not have. With nothing
    stored (stopped while the lane workers started, say) it says what `run`'s last line
    said, "start it over with", where it said "resume with"."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.runs import RunProcess, claim_experiment, end_run
    from tests.support.results_db import register_unrun

    with session_scope(make_engine(database_url)) as session:
        claim_experiment(session, experiment, RunProcess.current())
        register_unrun(
            session, experiment, spec_name="my-classify", spec_path="specs/my-classify.yaml"
        )
        end_run(session, experiment, "interrupted", RunProcess.current(), "interrupted by a signal")
    assert main(["--database", database_url, "show", experiment]) == 0
    resume = "evalflow run specs/my-classify.yaml" + (
        "" if experiment == "my-classify" else " --experiment named-apart"
    )
    assert capsys.readouterr().out.splitlines() == [
        "Status: interrupted: interrupted by a signal",
        f"No results for {experiment!r} yet: 0 generations stored, none scored "
        f"(status interrupted); start it over with: {resume}",
    ]


def test_a_running_run_is_to_be_waited_for_not_rerun(database_url, capsys):
    """Newcomer F13: `gate` of a running candidate said "finish it first (rerun its
    `evalflow run` to resume it)", and `show` "resume with: …", `baseline accept` "rerun
    the sweep to resume": a rerun of a running run is refused. Each says to wait for it,
    naming its process, in the same words."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.runs import RunProcess, claim_experiment, holder_words
    from tests.support.results_db import register_unrun

    with session_scope(make_engine(database_url)) as session:
        claim_experiment(session, "live", RunProcess.current())
        register_unrun(session, "live", spec_name="live", spec_path="specs/live.yaml")
        run = session.get(ExperimentRun, "live")
        wait = f"wait for it to finish ({holder_words(run)}; a rerun is refused while it runs)"
        register_unrun(session, "done", spec_name="done", spec_path="specs/done.yaml")
    assert main(["--database", database_url, "show", "live"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Status: running",
        f"No results for 'live' yet: 0 generations stored, none scored (status running); {wait}",
    ]
    assert main(["--database", database_url, "gate", "live", "--baseline", "done"]) == 2
    err = capsys.readouterr().err
    assert f"candidate 'live' is running: {wait}; only a completed" in err, err
    assert main(["--database", database_url, "baseline", "accept", "live"]) == 2
    err = capsys.readouterr().err
    assert f"experiment 'live' is running, not completed: {wait}; only a completed" in err
    assert "resume" not in err


def test_status_of_an_interrupted_run_with_nothing_scored_says_what_show_says(database_url, capsys):
    """`status` of a run stopped before anything was scored printed an empty leaderboard
    ("subset: 1 to 2 of 3 cases per config", every config ranked "not measured") and no
    resume command; it says what `show` says."""
    from evaluation.backends.base import GenerationResult
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.repository import save_generations
    from evaluation.storage.runs import RunProcess, claim_experiment, end_run
    from tests.support.results_db import make_config, make_suite, register_unrun

    suite = make_suite(3)
    configs = [make_config(t) for t in ("a:1b", "b:1b", "c:1b")]
    with session_scope(make_engine(database_url)) as session:
        claim_experiment(session, "cut", RunProcess.current())
        experiment = register_unrun(
            session,
            "cut",
            spec_name="cut",
            spec_path="specs/cut.yaml",
            suite=suite,
            configs=configs,
        )
        stored = [(configs[0], suite.cases[:2]), (configs[1], suite.cases[:1])]
        records = [
            GenerationRecord(
                WorkItem(config, case, suite.name, 0),
                "h",
                1,
                GenerationResult("out", "stop", 0.5, None),
            )
            for config, cases in stored
            for case in cases
        ]
        save_generations(session, experiment.id, records)
        end_run(session, "cut", "interrupted", RunProcess.current(), "interrupted by a signal")
    assert main(["--database", database_url, "show", "cut"]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    assert said.startswith("No results for 'cut' yet: 3 generations stored, none scored")
    assert main(["--database", database_url, "status", "cut"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == said
    assert "resume with: evalflow run specs/cut.yaml" in said
    assert "not measured" not in out and "Leaderboard" not in out


def _killed_run(database_url: str, name: str) -> None:
    """``name`` registered as a run begins it and left "running" by a process that is
    gone (its pid now another process's: kill -9), three cases, nothing stored."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.runs import RunProcess, claim_experiment
    from tests.support.results_db import make_config, make_suite, register_unrun

    here = RunProcess.current()
    with session_scope(make_engine(database_url)) as session:
        claim_experiment(session, name, RunProcess(here.pid, "gone", here.hostname))
        register_unrun(
            session,
            name,
            spec_name=name,
            spec_path=f"specs/{name}.yaml",
            suite=make_suite(3),
            configs=[make_config(m) for m in ("a:1b", "b:1b")],
        )


def test_every_reader_calls_a_killed_run_crashed_as_status_does(database_url, capsys):
    """After kill -9, `status`, `trends` and `gate` said crashed, but `series` said
    "last killed (running, ...)", `baseline accept` "is running, not completed" and the
    run's web page "status running": each read the stored status. One judgement now."""
    from fastapi.testclient import TestClient

    from evaluation.storage.db import make_engine
    from evaluation.view.app import create_app

    _killed_run(database_url, "killed")
    assert main(["--database", database_url, "series"]) == 0
    assert "last killed (crashed, started " in capsys.readouterr().out
    assert main(["--database", database_url, "baseline", "accept", "killed"]) == 2
    assert "experiment 'killed' is crashed, not completed" in capsys.readouterr().err
    page = TestClient(create_app(make_engine(database_url))).get("/e/killed/summary").text
    assert "configs · status crashed" in page and "status running" not in page


def test_the_run_page_of_a_run_with_nothing_scored_says_what_show_says(database_url, capsys):
    """The run's web page (what `evalflow view` serves) of an interrupted run with
    nothing scored said 'subset: 1 to 2 of 3 cases per config' (one config had none),
    ranked #1..#3 on nothing and 'Sorted by None'; it says what `show` says, unranked."""
    import html
    import re

    from fastapi.testclient import TestClient

    from evaluation.backends.base import GenerationResult
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.repository import save_generations
    from evaluation.storage.runs import RunProcess, claim_experiment, end_run
    from evaluation.view.app import create_app
    from tests.support.results_db import make_config, make_suite, register_unrun

    suite = make_suite(3)
    configs = [make_config(m) for m in ("a:1b", "b:1b", "c:1b")]
    command = "evalflow run /abs/cut.yaml --time-scale 3"
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        claim_experiment(session, "cut", RunProcess.current(), command=command)
        experiment = register_unrun(
            session, "cut", spec_name="cut", spec_path="/abs/cut.yaml", suite=suite, configs=configs
        )
        records = [
            GenerationRecord(
                WorkItem(config, case, suite.name, 0),
                "h",
                1,
                GenerationResult("out", "stop", 0.5, None),
            )
            for config, cases in ((configs[0], suite.cases[:2]), (configs[1], suite.cases[:1]))
            for case in cases
        ]
        save_generations(session, experiment.id, records)
        end_run(session, "cut", "interrupted", RunProcess.current(), "interrupted by a signal")
    assert main(["--database", database_url, "show", "cut"]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    assert said == (
        "No results for 'cut' yet: 3 generations stored, none scored (status interrupted); "
        f"resume with: {command}"
    )
    page = TestClient(create_app(engine)).get("/e/cut/summary").text
    shown = re.search(r'<p id="no-results">(.*?)</p>', page)
    assert shown is not None and html.unescape(shown.group(1)) == said
    assert "subset:" not in page and "#1" not in page and "None" not in page


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["view", "x"], "view stopped"),  # a viewer has nothing to resume
        (["show", "x"], "show stopped"),
        (["run", "spec.yaml"], "interrupted: rerun the same command to resume"),
    ],
)
def test_ctrl_c_says_resume_only_where_a_rerun_resumes(
    monkeypatch, capsys, database_url, argv, said
):
    import flows.cli.results
    import flows.cli.run
    import flows.cli.view
    from evaluation.storage.db import make_engine

    make_engine(database_url).dispose()  # a database: `show x` is not refused before the verb
    monkeypatch.setenv("EVALFLOW_DATABASE_URL", database_url)

    def interrupted(args):
        raise KeyboardInterrupt

    for module, name in (
        (flows.cli.view, "cmd_view"),
        (flows.cli.results, "cmd_show"),
        (flows.cli.run, "cmd_run"),
    ):
        monkeypatch.setattr(module, name, interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == said


def test_show_of_a_run_stopped_after_scoring_says_what_is_scored(database_url, capsys):
    """A run killed between its scoring and its aggregates: `show` said 'none scored' of
    an experiment whose every generation was scored; it says how many are, and how to
    resume (the rerun generates nothing and builds the leaderboard)."""
    from sqlalchemy import text

    from tests.support.review_db import build_review_db

    db = build_review_db(database_url, n_cases=3, temperatures=(0.0, 0.7))
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM aggregates"))
    assert main(["--database", database_url, "show", db.experiment]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("No results")]
    assert "6 generations stored, 6 of them scored, no leaderboard yet" in line
    assert "resume with: evalflow run" in line


def test_show_of_a_stopped_run_fits_the_width_its_resume_command_whole(
    database_url, capsys, monkeypatch
):
    """`show`'s resume line was 151 wide at 80 columns. Where the width is known the words
    wrap and the command gets lines of its own, continued with ' \\' (broken at a space,
    a pasted `evalflow run spec.yaml` ran without its --experiment); else one line."""
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from evaluation.storage.runs import RunProcess, claim_experiment, end_run
    from tests.support.review_db import build_review_db

    db = build_review_db(database_url, n_cases=3, temperatures=(0.0, 0.7))
    command = (
        "evalflow run /home/someone/projects/evaluations/specs/review-sweep.yaml "
        f"--experiment {db.experiment} --time-scale 3"
    )
    with session_scope(db.engine) as session:
        claim_experiment(session, db.experiment, RunProcess.current(), command=command)
        end_run(session, db.experiment, "interrupted", RunProcess.current(), "a signal")
        get_experiment(session, db.experiment).status = "interrupted"  # while it scored
    said = (
        f"The run stopped before it ended (status interrupted); resume with: {command} (it "
        "generates only what is missing, then scores and writes the report)"
    )
    assert main(["--database", database_url, "show", db.experiment]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == said  # a capture: no width known
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--database", database_url, "show", db.experiment]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80
    start = lines.index("The run stopped before it ended (status interrupted); resume with:")
    pasted = [line.removesuffix(" \\").strip() for line in lines[start + 1 : start + 3]]
    assert lines[start + 1].endswith(" \\") and " ".join(pasted) == command
    assert lines[start + 3 :] == [
        "(it generates only what is missing, then scores and writes the report)"
    ]


def test_a_command_in_a_line_too_wide_keeps_whole_on_lines_of_its_own():
    from flows.cli._width import fitted_command

    command = "evalflow run '/tmp/my specs/x.yaml' --experiment a-long-experiment-name"
    line = f"once that is fixed (a host restarted), resume with: {command} (only the 2 failed)"
    assert fitted_command(line, command, 200) == line
    assert fitted_command(line, command, 60).splitlines() == [
        "once that is fixed (a host restarted), resume with:",
        "  evalflow run '/tmp/my specs/x.yaml' --experiment \\",
        "    a-long-experiment-name",
        "(only the 2 failed)",
    ]


def test_plan_and_experiments_fit_the_width(tmp_path, capsys, monkeypatch):
    """Newcomer F8: `plan`'s lines were 84-112 wide at 80 columns, `experiments` 121.
    Each wraps at spaces (further lines indented); where it fits, as before."""
    from flows.cli.results import _listing

    monkeypatch.setenv("COLUMNS", "60")
    assert main(["plan", str(small_spec(tmp_path))]) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) <= 60
    row = ("a-sweep", "qa-short", "crashed", "full, limit 10", "2026-11-27 10:23:06", "real")
    rows = [(*row, "process 9255 on vm (started 2026-11-27 10:23:06 UTC) is gone")]
    narrow = "\n".join(_listing(rows, 80)).splitlines()
    assert max(map(len, narrow)) <= 80
    assert narrow[2].split() == ["a-sweep", "crashed", "full,", "limit", "10", "real"]
    wide = _listing(rows, 200)
    assert wide[1].startswith(f"{'a-sweep':<32} {'qa-short':<20} crashed ") and len(wide) == 2
    # no width known (a file, a pipe, a capture): whole lines, one row a line for grep
    monkeypatch.delenv("COLUMNS")
    assert _listing(rows, None) == [wide[0], wide[1]] and wide[1].endswith("is gone")
    assert main(["plan", str(small_spec(tmp_path))]) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) > 60
