"""`evalflow report`: the file it writes and what it says (newcomer N7: it sat silent for
19 s, then printed a bare `demo-simulated-report.html`, a second copy in the current
folder under another name than the report the run had written in
$EVALFLOW_HOME/reports/)."""

from __future__ import annotations

from flows.cli import main
from tests.support.review_db import build_review_db


def test_report_brings_the_runs_report_up_to_date_and_says_where(tmp_path, monkeypatch, capsys):
    home, here = tmp_path / "home", tmp_path / "here"
    here.mkdir()
    monkeypatch.setenv("EVALFLOW_HOME", str(home))
    monkeypatch.chdir(here)
    database = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(database, n_cases=4, temperatures=(0.0, 0.7))
    stored = home / "reports" / f"evalflow-{db.experiment}-report.html"
    stored.parent.mkdir(parents=True)
    stored.write_text("the run's report, older", encoding="utf-8")

    assert main(["--database", database, "report", db.experiment]) == 0
    said = capsys.readouterr()
    assert said.err.startswith(
        f"report: writing {stored} (the report its run wrote, brought up to date) · "
    )
    assert said.out == (
        f"wrote {stored}: the HTML report of {db.experiment} "
        "(self-contained; open it in a browser)\n"
    )
    assert stored.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert list(here.iterdir()) == []  # no second copy here

    out = tmp_path / "mine.html"
    assert main(["-q", "--database", database, "report", db.experiment, "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert said.err == "" and said.out.startswith(f"wrote {out}: the HTML report of")
