"""Report polish: every plot of a simulated experiment carries the SIMULATED mark, and
each config keeps one distinct colour in every plot."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from sqlalchemy import update
from sqlmodel import Session

from evaluation.report import gather, plots, render_report
from evaluation.storage.models import Generation
from evaluation.storage.repository import generations_frame
from tests.evaluation.test_report import _rate
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.report_figures  # the report's own tests: real figures


@pytest.mark.parametrize("simulated", [True, False])
def test_every_plot_of_a_simulated_experiment_is_marked(tmp_path, simulated):
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", name="toy", simulated=simulated)
    with Session(db.engine) as session:
        html = render_report(gather(session, db.experiment))
    alts = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]*)"', html)
    assert len(alts) == html.count("<img ") >= 3
    assert all(alt.startswith("SIMULATED: ") for alt in alts) is simulated
    assert any(alt.startswith("SIMULATED") for alt in alts) is simulated


def test_the_mark_is_drawn_in_the_figure():
    fig, _ = plots._figure(4, 3)
    plots.mark_simulated(fig)
    assert [t.get_text() for t in fig.texts] == ["SIMULATED"]


@pytest.mark.parametrize("n", [1, 3, 10, 11, 20, 21, 40])
def test_config_colours_are_distinct_and_stable(n):
    configs = [f"c{i}" for i in range(n)]
    colours = plots.config_colours(configs)
    assert list(colours) == configs and len(set(colours.values())) == n
    assert plots.config_colours(configs) == colours


def test_the_interval_plot_draws_each_config_in_its_own_colour():
    configs = [f"c{i}" for i in range(6)]
    rows = pd.DataFrame({"config": configs, "m": 0.5, "m_ci_low": 0.4, "m_ci_high": 0.6})
    names = {c: f"#{i}" for i, c in enumerate(configs, start=1)}
    fig = plots.interval_plot(rows, "m", names, title="m")
    drawn = {to_hex(line.get_color()) for line in fig.axes[0].lines if line.get_marker() == "o"}
    assert drawn == set(plots.config_colours(configs).values())


def test_tables_fit_their_card_and_preferences_name_configs_not_sides(tmp_path):
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", name="toy")
    with Session(db.engine) as session:
        _rate(session, db, np.random.default_rng(0))
        html = render_report(gather(session, db.experiment))
    assert html.count("<table>") == html.count('<div class="scroll"><table>') >= 2
    assert ".scroll { overflow-x: auto" in html
    # A and B are the review page's sides; the report counts wins per config
    assert "A wins" not in html and "first wins" in html
    assert "A is the left output and B the right" in html
    assert re.search(r'<td class="num">#\d: \d+</td>', html)
    assert "A better" not in html


def test_the_latency_plot_shows_each_configs_successful_latencies_as_stored(tmp_path):
    """The box plots are drawn from ``ok_latencies`` (each config's latencies, not the
    generations' frame): the same values the frame gave, failed generations and those
    without a latency left out, one box per config at its median."""
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", name="toy")
    with Session(db.engine) as session:
        ids = generations_frame(session, db.experiment_id)["id"].tolist()
        session.exec(update(Generation).where(Generation.id == ids[0]).values(status="failed"))
        session.exec(update(Generation).where(Generation.id == ids[1]).values(latency_s=None))
        session.commit()
        frame = generations_frame(session, db.experiment_id)
        data = gather(session, db.experiment)
    ok = frame[(frame["status"] == "ok") & frame["latency_s"].notna()]
    expected = {c: part["latency_s"].to_numpy(float) for c, part in ok.groupby("config_hash")}
    assert data.latencies.keys() == expected.keys() and len(ok) == len(frame) - 2
    for config, values in expected.items():
        np.testing.assert_array_equal(data.latencies[config], values)
    fig = plots.latency_distributions(data.latencies, data.order, data.names)
    medians = {
        float(line.get_xdata()[0])
        for line in fig.axes[0].lines
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
    }
    assert {float(np.median(v)) for v in expected.values()} <= medians
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == [data.names[c] for c in data.order if c in expected][::-1]
