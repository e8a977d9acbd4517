"""`evalflow view NAME --export FOLDER` writes the experiment's pages as files."""

from __future__ import annotations

import re

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


def test_every_exported_link_opens_the_page_it_names(tmp_path):
    """Links that need the server (filters, other queries) are text, not a silent
    return to the summary: only the summary link leads to summary.html. The side by
    side pages the flip matrix links to are exported: 3 configs, 6 ordered pairs."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(url, n_cases=2)
    out = tmp_path / "site"
    assert main(["--database", url, "view", db.experiment, "--export", str(out)]) == 0
    anchor = re.compile(r'<a\b[^>]*?\bhref="([^"]*)"[^>]*>(.*?)</a>', re.S)
    pages = list(out.rglob("*.html"))
    assert len(pages) > 8
    offline = 0
    for page in pages:
        html = page.read_text()
        offline += html.count('class="offline"')
        for href, label in anchor.findall(html):
            if href.startswith("#"):
                continue
            assert not href.startswith("/"), (page, href)
            opened = (page.parent / href).resolve()
            assert opened.is_file(), (page, href)
            if opened.name == "summary.html":
                assert label == "summary", (page, href, label)
    assert offline >= len(pages)  # at least the "side by side" nav entry on each page
    matrix = (out / "matrix.html").read_text()
    linked = {href for href, _ in anchor.findall(matrix) if href.startswith("compare/")}
    assert len(linked) == 6 and len(list((out / "compare").glob("*.html"))) == 6
    a, b = db.configs[0].hash, db.configs[1].hash
    pair = (out / "compare" / f"{a}-vs-{b}.html").read_text()
    assert 'id="pair-summary"' in pair and pair.count('class="pair"') == 2  # both cases
    assert "A better on" in pair
