"""The HTML report: self-contained, every section present, the numbers the statistics
and agreement modules give."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sqlmodel import Session

from evaluation.report import gather, render_report, write_report
from evaluation.review.pairing import draw_pairs
from evaluation.review.schema import Judgement
from evaluation.review.store import CRITERIA, record_pair_rating, save_pairs
from evaluation.storage.repository import generations_frame
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.report_figures  # the report's own tests: real figures

SECTIONS = ("leaderboard", "significance", "parameters", "pareto", "latency", "ratings", "trends")


def _rate(session, db, rng):
    """Two raters on 6 pairs of the first two configs; bob mostly agrees with ann."""
    gens = generations_frame(session, db.experiment_id)
    draws = draw_pairs(gens, [c.hash for c in db.configs[:2]], per_pair=6, seed=3)
    pairs = save_pairs(
        session, db.experiment_id, [(d.case_uid, d.generation_a, d.generation_b) for d in draws]
    )
    given = {"ann": {}, "bob": {}}
    for pair in pairs:
        for rater in given:
            stars = {side: {c: int(rng.integers(1, 6)) for c in CRITERIA} for side in "AB"}
            if rater == "bob":
                stars = {
                    s: {c: int(np.clip(v + rng.integers(-1, 2), 1, 5)) for c, v in per.items()}
                    for s, per in given["ann"][pair.id].items()
                }
            given[rater][pair.id] = stars
            record_pair_rating(session, pair.id, rater=rater, stars=stars, preference="A")
    return pairs, given


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'r.db'}"
    earlier = build_review_db(url, name="toy run 1")
    db = build_review_db(url, name="toy <run 2>")
    with Session(db.engine) as session:
        pairs, given = _rate(session, db, np.random.default_rng(0))
        for k, pair in enumerate(pairs[:2]):  # one consistent, one contradicting judge pair
            choices = [("first", "second"), ("first", "first")][k]
            for (first, second), choice in zip(
                [(pair.generation_a, pair.generation_b), (pair.generation_b, pair.generation_a)],
                choices,
                strict=True,
            ):
                session.add(
                    Judgement(
                        experiment_id=db.experiment_id,
                        judge="ollama:judge",
                        generation_id=first,
                        other_generation_id=second,
                        criterion="preference",
                        preference=choice,
                    )
                )
        session.commit()
        data = gather(session, db.experiment)
        path = write_report(session, db.experiment, tmp_path_factory.mktemp("out") / "r.html")
    return data, path.read_text(encoding="utf-8"), path, given, earlier


def test_the_report_is_one_self_contained_file(report):
    _, html, path, *_ = report
    assert path.suffix == ".html" and html.startswith("<!doctype html>")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert not re.search(r"<script|<link|src=\"http|url\(", html)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 7
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "toy &lt;run 2&gt;" in html and "toy <run 2>" not in html


def test_the_report_carries_the_statistics(report):
    data, html, *_ = report
    assert data.primary == "exact_match"
    assert data.order[0] == data.board.table.sort_values("exact_match").config.iloc[-1]
    assert len(data.comparison.comparisons) == 3  # all pairs of three configs
    assert data.fronts and data.fronts[0].cost == "latency_p95_s"
    assert {"temperature", "model"} <= set(data.varied)
    assert set(data.history["experiment"]) == {"toy run 1", "toy <run 2>"}
    assert "2 run(s)" in html


def test_the_ratings_section_shows_kappa_and_judge_consistency(report):
    data, html, _, given, _ = report
    ratings = data.ratings
    assert ratings.raters == ("ann", "bob") and ratings.n_ratings == 2 * 6 * 9
    kappas = {k.criterion: k for k in ratings.kappas}
    assert set(kappas) == set(CRITERIA)
    ann = [v for p in given["ann"].values() for s in "AB" for v in [p[s]["accuracy"]]]
    bob = [v for p in given["bob"].values() for s in "AB" for v in [p[s]["accuracy"]]]
    expected = cohen_kappa_score(ann, bob, labels=[1, 2, 3, 4, 5], weights="quadratic")
    assert kappas["accuracy"].kappa == pytest.approx(expected)
    assert f"{expected:.3f}" in html
    (pref,) = ratings.preferences
    assert pref.wins_a + pref.wins_b == 6
    (judge,) = ratings.judges
    assert (judge.pairs_judged, judge.contradictions) == (2, 1)
    assert "contradicted itself in 1 (50%)" in html


def test_an_experiment_without_ratings_says_how_to_get_them(report, tmp_path):
    *_, earlier = report
    with Session(earlier.engine) as session:
        html = render_report(gather(session, earlier.experiment))
    assert "evalflow review toy run 1" in html


def test_a_comparison_computed_already_is_shown_not_computed_again(report, monkeypatch):
    """The end of a sweep compares its configs, then writes the report: the report takes
    that comparison (every metric compared) and shows exactly what its own would be."""
    from evaluation.compare import compare_experiment
    from evaluation.report import data as report_data

    *_, earlier = report
    with Session(earlier.engine) as session:
        own = gather(session, earlier.experiment)
        computed = compare_experiment(session, earlier.experiment)

        def again(*args, **kwargs):
            raise AssertionError("the comparison was computed again")

        monkeypatch.setattr(report_data, "compare_experiment", again)
        shown = gather(session, earlier.experiment, comparison=computed)
    assert len(computed.report.comparisons) > 1  # more metrics than the report shows
    assert repr(shown.comparison) == repr(own.comparison)
    assert shown.order == own.order and shown.names == own.names


def test_a_script_in_the_experiment_name_is_escaped_everywhere(tmp_path):
    name = '<script>alert("x")</script>'
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", name=name)
    with Session(db.engine) as session:
        html = render_report(gather(session, db.experiment))
    assert "<script" not in html
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert f"<title>evalflow report: {escaped}</title>" in html
    assert f"<h1>evalflow report: {escaped}</h1>" in html
    assert f"<code>evalflow review {escaped}</code>" in html  # the no-ratings hint


def test_every_metric_with_a_direction_gets_its_verdict_pairs_front_and_trend(report):
    import html as html_text

    from evaluation.metrics import get_metric

    data, html, *_ = report
    compared = [m for m in data.board.metrics if not get_metric(m).descriptive]
    assert len(compared) >= 2  # the first metric only, before
    assert [m.metric for m in data.comparisons] == compared
    for multi in data.comparisons:
        assert len(multi.comparisons) == 3  # every pair of three configs, on each metric
        assert html_text.escape(multi.verdict, quote=False) in html
        assert f"pairwise significance matrix, {multi.metric}" in html
    assert {f.quality for f in data.fronts} == set(compared)
    assert [m for m, _ in data.histories] == compared
    assert all(f"{m} trends" in html for m in compared)


def test_the_report_of_a_run_whose_process_is_gone_says_crashed(tmp_path):
    # a newcomer killed a run with kill -9: `experiments` said crashed, the report "running"
    from sqlalchemy import select

    from evaluation.storage.models import Experiment
    from evaluation.storage.runs import claim_experiment
    from tests.evaluation.test_experiment_runs import dead_process

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", name="killed-run")
    with Session(db.engine) as session:
        claim_experiment(session, "killed-run", dead_process())
        row = session.exec(select(Experiment).where(Experiment.name == "killed-run")).scalar_one()
        row.status = "running"  # as a run killed with -9 leaves it
        session.commit()
        html = render_report(gather(session, db.experiment))
    with Session(db.engine) as session:
        stored = session.exec(
            select(Experiment).where(Experiment.name == "killed-run")
        ).scalar_one()
        assert stored.status == "running"  # shown as crashed, not rewritten by the report
    assert "status crashed" in html and "status running" not in html
