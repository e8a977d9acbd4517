"""The newcomer's F1: a teammate's results database, in WAL mode (evalflow's), in a folder
they may not write. SQLite (3.22 and later) reads a WAL database only with its -wal and
-shm files beside it, which it cannot make there: `show`, `series`, `trends`, `gate` and
`recommend` all said "unable to open database file" (a read-only mount) or "attempt to
write a readonly database" (a folder without write permission), exit 2, the documented
`mode=ro` URL too, and `recommend` doubled its prefix. They read it as a snapshot and say
so once; a verb that writes is refused up front, saying why.

A real read-only folder (0555); as root, whom permissions do not stop, the commands run
in one process without capabilities (setpriv), which reads and writes as a plain owner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from sqlmodel import Session

from evaluation.storage.db import EVALUATION_TABLES, make_engine
from selection.schema import TABLES
from selection.versions import PromotionDecision, save_version
from tests.conftest import REPO
from tests.support.databases import older_lacking_a_required_column
from tests.support.series_db import add_nights

# Each command line in turn, in one interpreter: its exit code, stdout and stderr.
COMMANDS = """
import contextlib, io, json, sys
from flows.cli import main
said = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    said.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(said))
"""


def run_without_write_permission(commands: list[list[str]], home, tmp_path) -> list[list]:
    """``commands`` run where ``home`` may not be written: 0555, and as root without the
    capabilities that would let it write there anyway."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all"] if setpriv else []
        if not prefix or subprocess.run([*prefix, "true"]).returncode != 0:
            pytest.skip("root, and no way to drop the capabilities that let it write anywhere")
    env = {k: v for k, v in os.environ.items() if k != "EVALFLOW_DATABASE_URL"}
    env |= {"EVALFLOW_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    home.chmod(0o555)
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", COMMANDS, json.dumps(commands)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=120,
        )
    finally:
        home.chmod(0o755)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_readers_read_a_read_only_folder_as_a_snapshot_and_writers_are_refused(
    trained, tmp_path
):
    home = tmp_path / "shared"
    home.mkdir()
    db = home / "evalflow.db"
    engine = make_engine(f"sqlite:///{db}", tables=(*EVALUATION_TABLES, *TABLES))
    with Session(engine) as session:
        old, new = add_nights(session, 2)
        save_version(session, trained, PromotionDecision(True, "test", basis="first version"))
        session.commit()
    engine.dispose()  # the last connection: the -wal is folded into the file, and goes
    read_only_url = f"sqlite:///file:{db}?mode=ro&uri=true"
    recommend = ["recommend", "qa", "--max-latency", "1", "-q"]
    report = tmp_path / "report.html"  # recheck R2: it stores nothing in the database
    readers = [
        ["show", new],
        ["series"],
        ["trends", "nightly"],
        ["gate", new, "--baseline", old],
        ["health", "--timeout", "2"],  # recheck R6: "unable to open database file", exit 1
    ]
    said = run_without_write_permission(
        [
            *readers,
            recommend,
            ["--database", read_only_url, *recommend],
            ["report", new, "--out", str(report)],
            ["trends", "nope"],
            ["baseline", "accept", new],
        ],
        home,
        tmp_path,
    )
    note = f"note: read the results database {db} as a snapshot: its folder is read-only"
    for argv, (code, out, err) in zip(readers, said, strict=False):
        assert code == 0, (argv, out, err)
        if argv[0] == "health":  # a probe polled every few seconds: no note on each one
            assert err == "", err
            continue
        (line,) = err.splitlines()  # said once, though `show` opens the database twice
        assert line.startswith(note), argv
    for code, out, err in said[len(readers) : len(readers) + 2]:  # recommend, both ways
        assert (code, err) == (0, ""), out
        assert f"note: not logged: read the results database {db} as a snapshot" in out
    code, out, err = said[-3]  # report --out: a reader that writes only its file
    assert (code, out) == (
        0,
        f"wrote {report}: the HTML report of {new} (self-contained; open it in a browser)\n",
    ), err
    assert err.startswith(note) and report.stat().st_size > 0
    code, out, err = said[-2]  # recheck R3: the database as the user named it
    assert (code, out) == (2, "")
    assert err.splitlines()[-1].endswith(f"the database searched: sqlite:///{db}")
    code, out, err = said[-1]  # a writer
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(
        f"error: cannot open the results database {db}: its folder is read-only, and SQLite "
        "writes a database in WAL mode (evalflow's) only with evalflow.db-wal and "
        "evalflow.db-shm beside it"
    )
    assert sorted(p.name for p in home.iterdir()) == ["evalflow.db"]


def test_a_refused_database_is_named_once_in_recommend(tmp_path):
    """`recommend` put its own prefix before the refusal, which names the database
    already: "cannot use the results database: cannot open the results database ..."."""
    from selection import recommend

    path = tmp_path / "old.db"
    older_lacking_a_required_column(path)
    answer = recommend("qa", database_url=f"sqlite:///{path}")
    assert answer.status == "unavailable"
    assert answer.message.startswith(
        f"the results database {path} was written by an older evalflow"
    )
