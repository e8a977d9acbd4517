"""`evalflow --help` lists the commands by task, each once, and every command's help ends
with an example the parser takes exactly as printed."""

from __future__ import annotations

import re
import shlex

from flows.cli.app import HELP_GROUPS, _verbs, build_parser
from tests.conftest import REPO


def _listed(text: str) -> dict[str, list[str]]:
    """The verbs under each group title of the top-level help."""
    listed: dict[str, list[str]] = {}
    title = None
    for line in text.split("commands, by task", 1)[1].split("\noptions:", 1)[0].splitlines():
        if re.fullmatch(r"  \S.*", line):
            title = line.strip()
            listed[title] = []
        elif title and (verb := re.match(r"    (\S+)  ", line)):
            listed[title].append(verb.group(1))
    return listed


def test_the_top_level_help_lists_every_command_once_by_task():
    parser = build_parser()
    listed = _listed(parser.format_help())
    verbs = [v for group in listed.values() for v in group]
    top = {name for name, verb in _verbs(parser) if verb.prog.count(" ") == 1}
    assert sorted(verbs) == sorted(top)  # each once, none left out
    assert list(listed)[:5] == list(HELP_GROUPS)[:5]
    assert "more" not in listed, (
        f"{listed.get('more')}: add the command to a task in HELP_GROUPS (flows/cli/app.py)"
    )
    assert listed["run and plan"][:2] == ["plan", "run"]
    assert {"show", "view", "compare"} <= set(listed["look at results"])
    assert {"review", "judge"} <= set(listed["people and judges"])
    assert {"recommend", "retrain"} <= set(listed["choosing a config"])
    assert {"doctor", "deploy"} <= set(listed["operations"])


def test_a_command_no_task_names_is_listed_under_more():
    import argparse

    from flows.cli.app import command_list

    sub = argparse.ArgumentParser().add_subparsers()
    sub.add_parser("run", help="run a sweep")
    sub.add_parser("brand-new", help="something new")
    text = command_list(sub)
    assert _listed(f"commands, by task{text.split('commands, by task', 1)[1]}\noptions:") == {
        "run and plan": ["run"],
        "more": ["brand-new"],
    }


def test_every_command_help_ends_with_an_example_the_parser_takes_as_printed():
    parser = build_parser()
    examples = 0
    for name, verb in _verbs(parser):
        text = verb.format_help()
        if "\nexample:\n" not in text:
            continue  # baseline accept: its group's help has the example
        printed = text.split("\nexample:\n", 1)[1].strip()
        argv = shlex.split(printed.replace("/srv/evalflow", str(REPO)))
        assert argv[0] == "evalflow" and name in argv, printed
        parser.parse_args(argv[1:])  # a refused example exits 2
        examples += 1
    assert examples >= 19


def test_help_names_evalflow_home_and_what_recommend_needs_first():
    """#47: --database's default left out $EVALFLOW_HOME, and recommend's example failed
    after the demo ("no selector has been trained yet") without saying to retrain."""
    parser = build_parser()
    verbs = dict(_verbs(parser))
    help_text = " ".join(verbs["doctor"].format_help().split())
    assert "$EVALFLOW_DATABASE_URL, else a SQLite file in $EVALFLOW_HOME" in help_text
    recommend = " ".join(verbs["recommend"].format_help().split())
    assert "`evalflow retrain --include-simulated`" in recommend


def test_evalflow_alone_prints_the_help(capsys):
    """The newcomer's F13: `evalflow` with no arguments said only "the following
    arguments are required: command"; it prints the help (exit 2: no command was run)."""
    from flows.cli.app import main

    for argv in ([], ["-q"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == build_parser().format_help() and err == ""


def test_every_help_fits_80_columns(capsys, monkeypatch):
    """The newcomer's F1: `evalflow` alone printed description lines 81 wide at 80
    columns; `gate --help`'s description was one line of 370 characters, `export`'s
    usage 102 (its --level choices): all fit, and a line that fits is as it was."""
    from flows.cli.app import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main([]) == 2
    texts = [capsys.readouterr().out]
    texts += [verb.format_help() for _, verb in _verbs(build_parser())]
    wide = [line for text in texts for line in text.splitlines() if len(line) > 80]
    assert wide == []
    assert "\n  evalflow gate pr-candidate --baseline pr-baseline --junit gate.xml\n" in (
        dict(_verbs(build_parser()))["gate"].format_help()
    )


def test_no_description_line_is_wrapped_at_80_columns():
    """Recheck NEW-6: `recommend --help`'s description line of 81 characters was wrapped
    at 80 columns, `--write-spec` alone on a line between two lines of prose: every line
    of a description broken by hand fits 80 columns, so its breaks are the only ones."""
    wide = [
        (name, line)
        for name, verb in _verbs(build_parser())
        if "\n" in (verb.description or "")
        for line in verb.description.split("\n")
        if len(line) > 80
    ]
    assert wide == []


def test_the_help_of_evalflow_run_and_judge_lists_the_exit_codes():
    """A busy host (it took the connection, kept silent) exited 2, as bad input does: a
    script could not tell "fix your input" from "try later". 75 (EX_TEMPFAIL) is said."""
    parser = build_parser()
    verbs = dict(_verbs(parser))
    for text in (parser.format_help(), verbs["run"].format_help(), verbs["judge"].format_help()):
        words = " ".join(text.split())
        assert "exit codes: 0 done; 1 failed" in words
        assert "2 refused: bad input, or a host that cannot be reached as configured" in words
        assert (
            "75 refused for now: a host or the Prefect API is busy, not down, the experiment "
            "is running elsewhere, or the results database stayed locked by another "
            "process's write (run the same command later)" in words
        )
