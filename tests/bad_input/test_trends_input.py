"""Bad input to the watch and the gate: a series that does not exist, runs that share no
cases, a gate against itself, an empty baseline, no baseline at all. Each is one
``error:`` line, exit 2, and nothing written (no JUnit XML, no summary, no row)."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from socket import gethostname

import pytest
from sqlalchemy import update

from evaluation.spec import Config
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment, ExperimentRun
from tests.bad_input.test_corpus import row_counts, run_cli
from tests.support.results_db import add_experiment, make_config, make_suite
from tests.support.series_db import CHANGING, STEADY, SUITE, add_nights


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nights of series ``nightly``, a run of another suite, an empty run, runs of
    the nightly's suite that are interrupted, still running, or never scored."""
    path = tmp_path_factory.mktemp("trends") / "results.db"
    engine = make_engine(f"sqlite:///{path}")
    with session_scope(engine) as session:
        add_nights(session, 2)
        add_experiment(
            session,
            "other-suite",
            make_suite(4, name="other"),
            {make_config(): {"exact_match": [1, 0, 1, 1]}},
        ).status = "completed"
        session.add(Experiment(name="empty", suite="toy", task_type="qa", status="completed"))
        right = {STEADY: {"exact_match": [1.0] * len(SUITE.cases)}}
        for name, status in (("cut-short", "interrupted"), ("still-going", "running")):
            add_experiment(session, name, SUITE, right).status = status
        add_experiment(session, "killed", SUITE, right).status = "running"  # its process gone
        session.add(
            ExperimentRun(experiment="killed", token="t", pid=2**22 + 1, hostname=gethostname())
        )
        unscored = {STEADY: {"exact_match": [None] * len(SUITE.cases)}}
        add_experiment(session, "unscored", SUITE, unscored).status = "completed"
        cut = {
            Config(c.model, replace(c.params, num_predict=3), c.template): right[STEADY]
            for c in (STEADY, CHANGING)
        }  # the nightly's two configs, num_predict cut: labels n=3
        add_experiment(session, "cut-both", SUITE, cut).status = "completed"
        other = {make_config("m:8b"): {"exact_match": [1.0] * len(SUITE.cases)}}
        add_experiment(session, "other-configs", SUITE, other).status = "completed"
        (kept,) = add_nights(session, 1, series="kept")
        session.exec(
            update(Experiment).where(Experiment.name == kept).values(accepted_baseline=True)
        )
    engine.dispose()
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "results.db"
    path.write_bytes(template.read_bytes())
    return f"sqlite:///{path}"


CASES = {
    "trends-unknown-series": (
        ["trends", "weekly"],
        "no series 'weekly' in this database (series: ",
    ),
    "gate-unknown-series": (
        ["gate", "nightly-night-01", "--series", "weekly"],
        "no series 'weekly'",
    ),
    "gate-unknown-candidate": (
        ["gate", "nope", "--baseline", "nightly-night-00"],
        "no experiment named 'nope'",
    ),
    "gate-against-itself": (
        ["gate", "nightly-night-01", "--baseline", "nightly-night-01"],
        "the candidate and the baseline are the same experiment ('nightly-night-01')",
    ),
    "gate-no-shared-cases": (
        ["gate", "nightly-night-01", "--baseline", "other-suite"],
        "'nightly-night-01' and 'other-suite' share no cases (suites 'toy' and 'other')",
    ),
    "gate-no-config-in-common": (
        ["gate", "other-configs", "--baseline", "nightly-night-00"],
        "'other-configs' and 'nightly-night-00' have no config in common: 'other-configs' "
        "ran m:8b t=0; 'nightly-night-00' ran m:1b t=0, m:1b t=0.7",
    ),
    "gate-two-configs-of-a-model-relabelled": (  # recheck2-1: said no why
        ["gate", "cut-both", "--baseline", "nightly-night-00"],
        "'cut-both' and 'nightly-night-00' have no config in common: 'cut-both' ran m:1b t=0 "
        "n=3, m:1b t=0.7 n=3; 'nightly-night-00' ran m:1b t=0, m:1b t=0.7; not paired by "
        "model: m:1b has 2 configs in each run, and pairing by model needs the one config of "
        "a model in each run (which became which is not for the gate to guess); they differ "
        "in num_predict (256 -> 3)",
    ),
    "gate-empty-baseline": (
        ["gate", "nightly-night-01", "--baseline", "empty"],
        "experiment 'empty' has no generations: nothing to compare",
    ),
    "gate-interrupted-candidate": (
        ["gate", "cut-short", "--baseline", "nightly-night-00"],
        "candidate 'cut-short' is interrupted: finish it first",
    ),
    "gate-interrupted-baseline": (  # recheck2-4: it passed, every quality check untested
        ["gate", "nightly-night-01", "--baseline", "cut-short"],
        "baseline 'cut-short' is interrupted: finish it first (rerun its `evalflow run` to "
        "resume it), or name another --baseline; only a completed, scored run can be a baseline",
    ),
    "gate-crashed-baseline": (
        ["gate", "nightly-night-01", "--baseline", "killed"],
        "baseline 'killed' is crashed (process 4194305 on ",
    ),
    "gate-running-candidate": (
        ["gate", "still-going", "--baseline", "nightly-night-00"],
        "candidate 'still-going' is running: wait for it to finish (a rerun is refused while "
        "it runs); only a completed, scored run can pass the gate",
    ),
    "gate-unscored-candidate": (
        ["gate", "unscored", "--baseline", "nightly-night-00"],
        "candidate 'unscored' has no exact_match scores for m:1b",
    ),
    "gate-unscored-baseline": (  # a completed baseline, no score: it passed on nothing
        ["gate", "nightly-night-01", "--baseline", "unscored"],
        "baseline 'unscored' is completed but has no scores for this gate's quality checks "
        "(exact_match): each would go untested, and no gate passes on no evidence; score it "
        "first (`evalflow rescore unscored --metrics exact_match`), or name another --baseline",
    ),
    "trends-k-leaves-no-threshold": (  # newcomer-45: --k 5 gave h = 0.00
        ["trends", "nightly", "--k", "5"],
        "CUSUM k = 5 with 2 false alarms per 100 nights over 6 stream(s) leaves the watch no "
        "threshold (h ≤ 0): use a k of at most 3.91 (--k), or --false-alarms of at most 0.258",
    ),
    "trends-false-alarms-leave-no-threshold": (  # newcomer F21: advised a --k, which no k fixes
        ["trends", "nightly", "--false-alarms", "99"],
        "99 false alarms per 100 nights over 6 stream(s) leaves the p95 latency's CUSUM (its "
        "allowance k = 1.5, fixed) no threshold (h ≤ 0): use --false-alarms of at most 94.5",
    ),
    "gate-no-baseline-accepted": (
        ["gate", "nightly-night-01"],
        "no baseline for 'nightly-night-01': series 'nightly' has no accepted baseline; "
        "name one with --baseline EXPERIMENT",
    ),
    "gate-series-without-baseline": (
        ["gate", "kept-night-00", "--series", "nightly"],
        "no baseline for 'kept-night-00': series 'nightly' has no accepted baseline",
    ),
    "gate-candidate-is-the-baseline": (
        ["gate", "kept-night-00"],
        "no baseline for 'kept-night-00': 'kept-night-00' is itself the accepted baseline of "
        "series 'kept'; name another with --baseline EXPERIMENT",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_with_nothing_written(case, db, tmp_path, capsys) -> None:
    argv, expected = CASES[case]
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    extra = ["--junit", str(junit), "--summary", str(summary)] if argv[0] == "gate" else []
    before = row_counts(db)
    rc, out, err = run_cli(["--database", db, *argv, *extra], capsys)
    lines = err.strip().splitlines()
    assert rc == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert "Traceback" not in out + err
    assert not junit.exists() and not summary.exists()
    assert row_counts(db) == before


@pytest.mark.parametrize(
    "case", ["trends-k-leaves-no-threshold", "trends-false-alarms-leave-no-threshold"]
)
def test_following_the_no_threshold_advice_works(case, db, capsys) -> None:
    # newcomer F21: "use a k below 1.31 (--k)", followed, gave the very same error
    argv = CASES[case][0]
    rc, _, err = run_cli(["--database", db, *argv], capsys)
    assert rc == 2
    advised = re.findall(r"(?:use a k|--false-alarms) of at most ([0-9.e+-]+)", err)
    fixes = [["--false-alarms", advised[-1]]]
    if "--k" in argv:
        fixes.append(["--k", advised[0]])
    for option, value in fixes:
        given = dict(zip(argv[2::2], argv[3::2], strict=True))
        digits = len(value.split(".")[1])
        above = f"{float(value) + 10**-digits:.{digits}f}"  # the next value up at its digits
        for shown, works in ((value, True), (above, False)):
            followed = [*argv[:2], *(x for pair in (given | {option: shown}).items() for x in pair)]
            rc, out, err = run_cli(["--database", db, *followed], capsys)
            # "of at most N": N works, the next value up does not (it said "below N")
            assert (rc, "series nightly" in out) == ((0, True) if works else (2, False)), err
            # near the limit a threshold is small: printed with its digits, not 0.00/0.00
            assert "/0.00 " not in out and "h = 0.00;" not in out


def test_a_good_gate_writes_its_files_and_exits_by_its_verdict(db, tmp_path, capsys) -> None:
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    argv = ["gate", "nightly-night-01", "--baseline", "nightly-night-00"]
    rc, out, _ = run_cli(
        ["--database", db, *argv, "--junit", str(junit), "--summary", str(summary)], capsys
    )
    assert rc == 0 and out.startswith("gate passed: nightly-night-01 vs nightly-night-00")
    assert junit.read_text(encoding="utf-8").startswith('<?xml version="1.0"')
    assert summary.read_text(encoding="utf-8").startswith("earlier step\n## evalflow gate")


def test_baseline_and_series_together_are_refused(db, capsys) -> None:
    argv = ["gate", "nightly-night-01", "--baseline", "nightly-night-00", "--series", "nightly"]
    rc, _out, err = run_cli(["--database", db, *argv], capsys)
    assert rc == 2 and "argument --series: not allowed with argument --baseline" in err, err


def test_junit_and_summary_naming_one_file_are_refused(db, tmp_path, capsys) -> None:
    same = tmp_path / "same.xml"
    argv = ["gate", "nightly-night-01", "--baseline", "nightly-night-00"]
    rc, _out, err = run_cli(
        ["--database", db, *argv, "--junit", str(same), "--summary", str(tmp_path / "same.xml")],
        capsys,
    )
    assert rc == 2 and err.startswith("error: --junit and --summary name the same file"), err
    assert not same.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_a_summary_that_cannot_be_written_leaves_no_junit(db, tmp_path, capsys) -> None:
    junit = tmp_path / "gate.xml"
    argv = ["gate", "nightly-night-01", "--baseline", "nightly-night-00"]
    rc, _out, err = run_cli(
        ["--database", db, *argv, "--junit", str(junit), "--summary", "/proc/evalflow-gate.md"],
        capsys,
    )
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "--summary" in lines[0], err
    assert not [p.name for p in tmp_path.iterdir() if not p.name.startswith("results.db")]


GATE = ["gate", "nightly-night-01", "--baseline", "nightly-night-00"]


def test_a_junit_through_a_symlink_replaces_the_file_it_names(db, tmp_path, capsys) -> None:
    """The newcomer's F3 (stop 71): the JUnit file was moved over the link itself."""
    target, link = tmp_path / "target.xml", tmp_path / "link.xml"
    target.write_text("old", encoding="utf-8")
    link.symlink_to(target.name)
    rc, _out, err = run_cli(["--database", db, *GATE, "--junit", str(link)], capsys)
    assert rc == 0, err
    assert link.is_symlink() and target.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir() if "results.db" not in p.name) == [
        "link.xml",
        "target.xml",
    ]


def test_a_junit_to_a_pipe_is_written_to_not_replaced(db, tmp_path, capsys) -> None:
    """`--junit /dev/stdout` (a CI idiom) names no regular file: it was replaced by the
    XML, as root /dev/stdout itself. A named pipe stands in for it."""
    pipe = tmp_path / "gate.pipe"
    os.mkfifo(pipe)
    read: list[str] = []
    reader = threading.Thread(
        target=lambda: read.append(pipe.read_text(encoding="utf-8")), daemon=True
    )
    reader.start()
    rc, _out, err = run_cli(["--database", db, *GATE, "--junit", str(pipe)], capsys)
    reader.join(60)
    assert rc == 0, err
    assert stat.S_ISFIFO(pipe.lstat().st_mode) and read[0].startswith("<?xml")


def test_a_junit_that_cannot_be_written_fails_the_gate_in_one_line(db, tmp_path, capsys) -> None:
    """`--junit /dev/full` passed with exit 0 (the XML written beside it, then moved over
    the device node): a write refused (no space) is exit 2, the summary not appended. A
    device node like /dev/full (1, 7) in tmp_path stands in for it."""
    full, summary = tmp_path / "full", tmp_path / "summary.md"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with full.open("w") as out:
            out.write("x")
    except PermissionError:
        pytest.skip("no device nodes here (not root, or a nodev folder)")
    except OSError:
        pass  # the write refused, as it must be
    argv = ["--database", db, *GATE, "--junit", str(full), "--summary", str(summary)]
    rc, out, err = run_cli(argv, capsys)
    assert (rc, out) == (2, "")
    assert err == f"error: --junit {full}: cannot write it (No space left on device)\n"
    assert stat.S_ISCHR(full.lstat().st_mode) and not summary.exists()


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize(("junit", "fd"), [("/dev/stdout", 1), ("/proc/self/fd/2", 2)])
def test_a_junit_to_the_own_redirected_stream_is_written_through_it(db, tmp_path, junit, fd):
    """The recheck's R1 (stop 71): `--junit /dev/stdout >> ci.log` moved the XML over
    ci.log (a regular file behind /proc/self/fd/1): its earlier lines and the verdict
    were gone, the log another inode."""
    log = tmp_path / "ci.log"
    log.write_text("line1 of an existing CI log\n", encoding="utf-8")
    inode = log.stat().st_ino
    env = os.environ | {"PYTHONPATH": str(ROOT), "EVALFLOW_HOME": str(tmp_path / "home")}
    with log.open("a") as out:
        streams = {"stdout": out} if fd == 1 else {"stderr": out}
        argv = [sys.executable, "-m", "flows.cli", "--database", db, *GATE, "--junit", junit]
        done = subprocess.run(argv, env=env, cwd=ROOT, timeout=300, check=False, **streams)
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 0 and log.stat().st_ino == inode, text
    assert text.startswith("line1 of an existing CI log\n<?xml") and "</testsuite>\n" in text
    assert fd == 2 or "gate passed: nightly-night-01" in text


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_a_junit_to_the_own_stdin_is_refused(db, tmp_path) -> None:
    """The recheck of R1: `--junit /dev/stdin < in.txt` appended the XML to the input."""
    given = tmp_path / "in.txt"
    given.write_text("input\n", encoding="utf-8")
    env = os.environ | {"PYTHONPATH": str(ROOT), "EVALFLOW_HOME": str(tmp_path / "home")}
    argv = [sys.executable, "-m", "flows.cli", "--database", db, *GATE, "--junit", "/dev/stdin"]
    with given.open() as stdin:
        done = subprocess.run(
            argv, env=env, cwd=ROOT, timeout=300, check=False, stdin=stdin, capture_output=True
        )
    assert (done.returncode, done.stdout) == (2, b""), done.stderr
    assert done.stderr == (
        b"error: --junit /dev/stdin: names the gate's standard input: give a file to write\n"
    )
    assert given.read_text(encoding="utf-8") == "input\n"


def test_a_replaced_junit_keeps_its_mode(db, tmp_path, capsys) -> None:
    """The recheck's R2: a 600 file (through a link: its target) came back 644."""
    plain, target, link = tmp_path / "plain.xml", tmp_path / "target.xml", tmp_path / "link.xml"
    for path, mode in ((plain, 0o600), (target, 0o640)):
        path.write_text("old", encoding="utf-8")
        path.chmod(mode)
    link.symlink_to(target.name)
    for path, mode in ((plain, 0o600), (link, 0o640)):
        rc, _out, err = run_cli(["--database", db, *GATE, "--junit", str(path)], capsys)
        assert rc == 0, err
        assert path.read_text(encoding="utf-8").startswith("<?xml")
        assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_folder_refusing_the_staged_junit_is_named(db, tmp_path, capsys, monkeypatch) -> None:
    """The recheck's R3: where only the file beside the target cannot be made (its folder
    not writable, the file itself is), 'cannot write it' was untrue."""
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    junit.write_text("old", encoding="utf-8")
    real = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    argv = ["--database", db, *GATE, "--junit", str(junit), "--summary", str(summary)]
    rc, out, err = run_cli(argv, capsys)
    assert (rc, out) == (2, "")
    assert err == (
        f"error: --junit {junit}: its folder {tmp_path} refuses a new file (Permission "
        "denied): the XML is written beside gate.xml and moved over it\n"
    )
    assert junit.read_text(encoding="utf-8") == "old" and not summary.exists()


@pytest.mark.parametrize("before", ["earlier step\n", None])
def test_a_summary_refused_part_way_is_left_as_it_was(db, tmp_path, capsys, monkeypatch, before):
    """The recheck's R4: on a full disk the summary kept half a table (a new one: an empty
    file), though the exit is 2."""
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    if before is not None:
        summary.write_text(before, encoding="utf-8")
    real = os.write

    def fill(fd, data):
        if not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:  # the staged JUnit file
            return real(fd, data)
        if os.fstat(fd).st_size > len(before or ""):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data[:40])

    monkeypatch.setattr(os, "write", fill)
    argv = ["--database", db, *GATE, "--junit", str(junit), "--summary", str(summary)]
    rc, out, err = run_cli(argv, capsys)
    assert (rc, out) == (2, "")
    assert err == f"error: --summary {summary}: cannot write it (No space left on device)\n"
    assert not junit.exists()
    if before is None:
        assert not summary.exists()
    else:
        assert summary.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("argv", "rc", "said"),
    [
        (["series"], 0, "no series yet"),
        (["trends", "nightly"], 2, "error: no results database at {db} yet: nothing to watch"),
        (["gate", "a", "--baseline", "b"], 2, "error: no results database at {db} yet"),
    ],
)
def test_read_only_commands_on_a_fresh_home_create_nothing(
    argv, rc, said, tmp_path, monkeypatch, capsys
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("EVALFLOW_HOME", str(home))
    monkeypatch.delenv("EVALFLOW_DATABASE_URL", raising=False)
    got, out, err = run_cli(argv, capsys)
    assert got == rc and said.format(db=home / "evalflow.db") in out + err, (out, err)
    assert not home.exists()


def test_the_trends_benchmark_refuses_a_scenario_it_does_not_know() -> None:
    script = Path(__file__).parents[2] / "benchmarks" / "perf" / "trends_benchmark.py"
    done = subprocess.run(
        [sys.executable, str(script), "--scenarios", "null,drop5", "--reps", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == "", done
    assert "argument --scenarios: unknown drop5: expected names among null, drop" in done.stderr


def test_an_unknown_experiment_says_the_list_is_the_newest_ten(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'many.db'}"
    with session_scope(make_engine(db)) as session:
        for i in range(12):
            made = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
            session.add(Experiment(name=f"e{i:02d}", suite="toy", task_type="qa", created_at=made))
    rc, _out, err = run_cli(["--database", db, "gate", "nope", "--baseline", "e00"], capsys)
    said = "known experiments (the 10 newest of 12, newest first; `evalflow experiments` lists all)"
    assert rc == 2 and said in err
    # newcomer F10: "the 10 newest of 11" listed them oldest first (nc-r1, ...)
    listed = ", ".join(f"e{i:02d}" for i in range(11, 1, -1))
    assert err.split("lists all): ")[1].startswith(listed + ";")


def test_series_says_its_time_is_when_the_last_run_started(db, capsys) -> None:
    """A newcomer read "(completed, 10:49)" as the completion time: it is the start."""
    rc, out, _ = run_cli(["--database", db, "series"], capsys)
    (kept,) = [line for line in out.splitlines() if line.startswith("kept ")]
    assert rc == 0 and "(completed, started " in kept and " UTC), baseline " in kept


def test_no_baseline_on_a_read_only_share_says_where_to_accept_one(
    db, template, tmp_path, monkeypatch, capsys
) -> None:
    """Recheck: `gate` on a teammate's copy in a read-only folder (read as a snapshot)
    advised `evalflow baseline accept EXPERIMENT`, which is refused there: it stores the
    choice. The advice says where it must run; a writable database's says nothing more.
    ``os.access`` stands in for the permissions root does not have."""
    import os
    import sqlite3

    shared = tmp_path / "shared"
    shared.mkdir()
    copy = shared / "evalflow.db"
    copy.write_bytes(template.read_bytes())
    sqlite3.connect(copy).execute("PRAGMA journal_mode=WAL").connection.close()
    access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: not (mode & os.W_OK and path == shared) and access(path, mode),
    )
    advice = (
        "or accept one with `evalflow baseline accept EXPERIMENT` where the results "
        "database may be written (it stores the choice; "
    )
    shares = {
        f"sqlite:///{copy}": f"{copy} is read-only here: its folder is read-only)",
        f"sqlite:///file:{db.removeprefix('sqlite:///')}?mode=ro&uri=true": (
            f"{db.removeprefix('sqlite:///')} is read-only here: its URL opens it read-only "
            "(mode=ro))"
        ),
    }
    for url, why in shares.items():
        rc, out, err = run_cli(["--database", url, "gate", "nightly-night-01"], capsys)
        assert (rc, out) == (2, ""), err
        assert err.splitlines()[-1].endswith(advice + why), err
    rc, out, err = run_cli(["--database", db, "gate", "nightly-night-01"], capsys)
    assert rc == 2 and err.rstrip().endswith("`evalflow baseline accept EXPERIMENT`"), err
