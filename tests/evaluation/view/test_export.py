"""`evalflow view NAME --export FOLDER` writes the experiment's pages as files."""

from __future__ import annotations

from flows.cli import main
from tests.support.review_db import build_review_db


def test_the_view_command_exports_a_static_folder(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(url, n_cases=2)
    out = tmp_path / "site"
    assert main(["--database", url, "view", db.experiment, "--export", str(out)]) == 0
    assert f"open {out / 'summary.html'}" in capsys.readouterr().out
    summary = (out / "summary.html").read_text()
    assert 'href="static/view.css"' in summary and 'href="generations-1.html"' in summary
    assert len(list((out / "g").glob("*.html"))) == 6 and (out / "static" / "view.js").exists()
    assert "<form" not in (out / "generations-1.html").read_text()  # filters need the server
