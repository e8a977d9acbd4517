"""The command `run` prints (and stores, for `show`) to resume an experiment runs from
any folder: a newcomer's `evalflow run specs/x.yaml`, copied from another folder, found
no spec. The spec's path and a SQLite --database file's are made absolute, the rest kept
as typed; a masked password is said to be, so the user knows to put it back."""

from __future__ import annotations

import shlex

from evaluation.redact import urls_given
from flows.cli._run_words import next_steps
from flows.cli.app import build_parser
from flows.cli.run import PASSWORD_NOTE, _resume


def resume(argv: list[str]) -> str:
    args = build_parser(urls_given(argv, {})).parse_args(argv)
    args.argv = argv
    return _resume(args)


def test_the_resume_command_names_the_spec_and_database_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--database", "sqlite:///r.db", "run", "my specs/x.yaml", "--experiment", "x"]
    command = resume(argv)
    assert shlex.split(command) == [
        "evalflow",
        "--database",
        f"sqlite:///{tmp_path}/r.db",
        "run",
        f"{tmp_path}/my specs/x.yaml",
        "--experiment",
        "x",
    ]
    assert PASSWORD_NOTE not in command
    same = resume(["run", "./my specs/../x.yaml", "--database=sqlite:///../o.db", "--wait"])
    assert shlex.split(same)[1:] == [
        "run",
        f"{tmp_path / 'x.yaml'}",
        f"--database=sqlite:///{tmp_path.parent / 'o.db'}",
        "--wait",
    ]


def test_an_experiment_named_as_its_spec_keeps_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    words = shlex.split(resume(["run", "--experiment", "demo", "demo"]))
    assert words == ["evalflow", "run", "--experiment", "demo", f"{tmp_path}/demo"]


def test_a_masked_password_is_said_to_be(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql+psycopg2://ana:s3cret@db/x"
    command = resume(["--database", url, "run", "x.yaml"])
    assert command == (
        f"evalflow --database 'postgresql+psycopg2://ana:***@db/x' run {tmp_path}/x.yaml"
        + PASSWORD_NOTE
    )
    assert "s3cret" not in command


def test_the_next_commands_read_the_database_the_run_was_given(tmp_path, monkeypatch):
    """`run --database URL` printed `evalflow compare NAME` as the next command, which
    read the default database and found no NAME: the hints carry the run's --database,
    masked and made absolute as its resume line has it."""
    monkeypatch.chdir(tmp_path)
    url = "postgresql+psycopg2://ana:s3cret@db/x"
    text = next_steps("nc-pg", "r.html", ["run", "x.yaml", "--database", url])
    shown = "--database 'postgresql+psycopg2://ana:***@db/x'"
    assert f"evalflow view nc-pg {shown}{PASSWORD_NOTE}\n" in text
    assert text.endswith(f"evalflow compare nc-pg {shown}{PASSWORD_NOTE}")
    assert "s3cret" not in text
    text = next_steps("x", "r.html", ["--database=sqlite:///r.db", "run", "x.yaml"])
    assert text.endswith(f"evalflow compare x --database=sqlite:///{tmp_path}/r.db")
    assert PASSWORD_NOTE not in text
    assert next_steps("x", "r.html", ["run", "x.yaml"]).endswith("evalflow compare x")
