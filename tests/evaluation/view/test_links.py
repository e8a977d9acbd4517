"""Where the view lives, named the same way by the report, the Prefect artifact and the
command line; `evalflow view` refuses an unknown experiment in one line."""

from __future__ import annotations

from sqlmodel import Session

from evaluation.report import build_report, gather
from evaluation.report.summary import render_summary
from evaluation.view import DEFAULT_PORT, view_command, view_hint, view_url
from flows.cli import main
from tests.support.review_db import build_review_db


def test_the_url_and_the_command_quote_the_experiment_name():
    assert view_url("a b/c") == f"http://127.0.0.1:{DEFAULT_PORT}/e/a%20b%2Fc"
    assert view_url("x", "::1", 9000) == "http://[::1]:9000/e/x"
    assert view_command("it's") == "evalflow view 'it'\"'\"'s'"


def test_the_report_and_its_summary_link_to_the_view(database_url):
    db = build_review_db(database_url, name="toy-linked", n_cases=3)
    with Session(db.engine) as session:
        page = build_report(session, db.experiment)
        summary = render_summary(gather(session, db.experiment), links={})
    assert "<code>evalflow view toy-linked</code>" in page
    assert f'href="{view_url("toy-linked")}"' in page
    assert view_hint("toy-linked") in summary


def test_view_refuses_an_unknown_experiment_in_one_line(database_url, capsys):
    build_review_db(database_url, name="toy-known", n_cases=2)
    assert main(["--database", database_url, "view", "toy-unknown"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no experiment named 'toy-unknown'" in err
