"""The HTML report in real headless Chromium: a 13-column leaderboard (three metrics,
long config labels) fits a 1400 px window, wrapped rather than cut at the card's edge."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from evaluation.report import gather, render_report
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.db import make_engine
from tests.support.results_db import add_experiment, make_suite

# the figures' real sizes in the page's layout
pytestmark = [pytest.mark.integration, pytest.mark.report_figures]


def test_a_thirteen_column_leaderboard_fits_a_1400_px_window(browser, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    configs = [
        Config(
            f"qwen2.5-coder-instruct-{size}:latest",
            GenerationParams(temperature=t, top_p=0.9, num_predict=256, num_ctx=8192),
            PromptTemplate("default"),
        )
        for size, t in (("7b", 0.2), ("14b", 0.7), ("32b", 1.0))
    ]
    n = 12
    scores = {
        c: {
            "exact_match": [float((i + k) % 2) for i in range(n)],
            "contains": [float((i + k) % 3 > 0) for i in range(n)],
            "output_length": [10.0 + i + k for i in range(n)],
        }
        for k, c in enumerate(configs)
    }
    with Session(engine) as session:
        add_experiment(session, "wide", make_suite(n), scores).status = "completed"
        session.commit()
        html = render_report(gather(session, "wide"))
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(path.as_uri())
    board = page.locator("#leaderboard table").first
    assert board.locator("thead th").count() == 13
    box = page.locator("#leaderboard .scroll").first
    # the whole table is in its card: nothing past the right edge to scroll to
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth"), box.evaluate(
        "e => [e.scrollWidth, e.clientWidth]"
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()
