"""The report's summary for the Prefect UI: verdict, leaderboard top, links, the file."""

from __future__ import annotations

import re

from sqlmodel import Session

from evaluation.report import gather
from evaluation.report.summary import TOP, render_summary
from tests.support.review_db import build_review_db


def test_the_summary_carries_the_verdict_the_top_configs_and_links(database_url):
    db = build_review_db(
        database_url, name="toy-summary", temperatures=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    )
    with Session(db.engine) as session:
        data = gather(session, db.experiment)
    text = render_summary(
        data,
        links={"Leaderboard": "http://ui:4200/artifacts/key/evalflow-toy-summary-leaderboard"},
        report_file="/srv/reports/evalflow-toy-summary-report.html",
    )
    assert text.startswith("# Report: toy-summary\n")
    assert f"**Verdict on {data.primary}:** {data.comparison.verdict}" in text
    rows = [line for line in text.splitlines() if re.match(r"\| #\d", line)]
    assert len(data.order) == 6 and [r.split(" | ")[0] for r in rows] == [
        f"| #{i}" for i in range(1, TOP + 1)
    ]
    assert f"## Leaderboard ({TOP} of 6, by {data.primary})" in text
    assert "- [Leaderboard](http://ui:4200/artifacts/key/evalflow-toy-summary-leaderboard)" in text
    assert "`/srv/reports/evalflow-toy-summary-report.html` on the machine" in text
    assert "SIMULATED" not in text


def test_a_simulated_experiment_says_so(database_url):
    db = build_review_db(database_url, name="toy-sim", simulated=True)
    with Session(db.engine) as session:
        text = render_summary(gather(session, db.experiment), links={})
    assert text.splitlines()[2].startswith("> **") and "SIMULATED" in text.splitlines()[2]
    assert "## More" not in text and "on the machine that ran the flow" not in text
