"""A corpus metric has two figures per config: its corpus value (the leaderboard's) and
the mean of its per-case values (what the paired tests use). After `rescore --first chrf`
a newcomer's surfaces named different winners: show and the view ranked by corpus chrF,
compare, the verdicts, the report's order and status's verdict line by the per-case mean.
Every surface now ranks by the stored figure and says which it is; the verdict names the
per-case values its tests use. In process: SQLite, 12 of 18 cases run, nothing generated."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text as sql

from evaluation.compare._comparison import compare_experiment
from evaluation.compare._leaderboard import load_leaderboard, ranked_rows, render_text
from evaluation.compare._stored import save_comparison
from evaluation.itembank import estimates_text, experiment_estimates
from evaluation.metrics import get_metrics
from evaluation.monitor import status_text, store_summary
from evaluation.monitor._summary import summarize
from evaluation.report.data import gather
from evaluation.report.html import render_report
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import scores_frame, set_experiment_status
from evaluation.suites import Case, Suite
from evaluation.view.app import create_app
from evaluation.view.matrix import quality_grid
from evaluation.view.summary import experiment_summary
from tests.support.results_db import MISSING, add_experiment, make_config

LONG = "the quick brown fox jumps over the lazy dog by the old wooden fence near the river " * 3
SHORT = [f"answer {w}" for w in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")]
METRICS = ["chrf", "contains"]  # chrf first, as `rescore --first chrf` leaves them
SHORTS_RIGHT = make_config("m:1b", 0.0)  # the short answers right: the higher per-case mean
LONG_RIGHT = make_config("m:1b", 0.7)  # the long answers right: the higher corpus chrF
BOTH = (SHORTS_RIGHT, LONG_RIGHT)


def _output(config, reference: str) -> str:
    long = reference.startswith("the quick")
    return reference if long == (config is LONG_RIGHT) else "zzz"


def _stored(database_url: str) -> int:
    """12 cases of 18 run (6 short answers, 6 long ones, 4 case groups), scored and
    aggregated as a run and `rescore --first chrf` leave them, its comparison stored."""
    refs = SHORT + [f"{LONG}{i}" for i in range(6)]
    cases = [Case(f"c{i:02d}", f"q{i}", (r,), group=f"g{i % 4}") for i, r in enumerate(refs)]
    cases += [Case(f"x{i:02d}", f"x{i}", ("extra",), group="g9") for i in range(6)]
    suite = Suite("toy", "1", "qa", ("contains",), tuple(cases))
    outputs = {c: [_output(c, case.references[0]) for case in cases[:12]] for c in BOTH}
    scores = {
        config: {
            m.name: [*m.score(outputs[config], cases[:12]).tolist(), *[MISSING] * 6]
            for m in get_metrics(METRICS)
        }
        for config in BOTH
    }
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        experiment_id = add_experiment(session, "nc", suite, scores, outputs=outputs).id
        set_experiment_status(session, experiment_id, "finished")
    with session_scope(engine) as session:
        save_comparison(session, compare_experiment(session, experiment_id))
        store_summary(session, experiment_id)
    return experiment_id


def test_every_surface_ranks_a_corpus_metric_by_its_corpus_value(database_url):
    experiment_id = _stored(database_url)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        scores = scores_frame(session, experiment_id)
        chrf = scores[scores["metric"] == "chrf"].groupby("config")["value"].mean()
        board = load_leaderboard(session, "nc")
        corpus = {r["config"]: r["chrf"] for r in board.rows}
        # the two figures disagree: the case this test is about
        assert chrf[SHORTS_RIGHT.hash] > chrf[LONG_RIGHT.hash]
        assert corpus[LONG_RIGHT.hash] > corpus[SHORTS_RIGHT.hash]
        best = LONG_RIGHT.hash
        assert ranked_rows(board)[0]["config"] == best  # show, run, status's board
        assert "Ranked by chrf's corpus value" in render_text(board, columns=200)

        multi = next(
            m for m in compare_experiment(session, "nc").report.comparisons if m.metric == "chrf"
        )
        assert multi.ranking[0][0] == "m:1b t=0.7"  # compare, the verdicts, the report's #1
        assert "within noise of the best, t=0.7 (corpus chrf 96" in multi.verdict
        assert "paired on per-case chrf" in multi.verdict

        report = gather(session, "nc")
        assert report.order[0] == best
        assert report.names[best] == "#1"

        summary = experiment_summary(session, "nc")
        assert summary.rows[0].config == best
        assert "corpus value" in summary.ranked_by
        assert "t=0.7 (corpus chrf" in (summary.verdict or "")

        (status,) = summarize(session, [experiment_id])
        assert "t=0.7 (corpus chrf" in status["verdict"]
        # `evalflow status` names the figure its best line gives (it said "best on chrf")
        facts = {"name": "nc", "status": "finished", "live": None, "summary": status}
        assert "\n  best on chrf's corpus value: t=0.7 = 9" in status_text(facts)

        # the block of means over the cases run: the board's order, inside chrF's 0..100,
        # and it says its figure is not the board's
        metric, estimates = experiment_estimates(session, experiment_id)
        assert metric == "chrf"
        assert estimates[0].label == "m:1b t=0.7"
        for e in estimates:
            assert 0 <= e.estimate.low <= e.estimate.high <= 100
        text = estimates_text(metric, estimates, width=200)
        per_case = "chrf here: the mean of its per-case values, not the corpus chrf"
        assert per_case in text
        # the report and the view say it too (they listed the means, out of order,
        # unexplained), and which figure their parameter effects and grid cells are
        effects = "chrf in rho, p and best value: the mean of its per-case values"
        html = render_report(report)
        assert per_case in html and effects in html
        assert "s corpus chrf in the 1 run(s) of suite" in html  # its trend: stored figures
        # and the comparison's markdown (`compare --markdown`, the artifact): its means and
        # parameter effects tables are of per-case values too
        markdown = compare_experiment(session, "nc").markdown
        assert f"_{per_case}" in markdown and f"_{effects}" in markdown
        assert "contains here" not in markdown
        page = TestClient(create_app(engine)).get("/e/nc/summary").text
        assert per_case in page and effects in page
        assert quality_grid(session, "nc", "temperature", "model").figure.startswith("corpus chrf")

        # a config without a stored figure (not aggregated): ranked by the per-case means
        # rather than named unscored, and the verdict no longer speaks of a corpus figure
        gone = "DELETE FROM aggregates WHERE metric = 'chrf' AND config_hash = :h"
        session.execute(sql(gone), {"h": LONG_RIGHT.hash})
        multi = compare_experiment(session, "nc", metrics=["chrf"]).report.comparisons[0]
        assert multi.ranking[0][0] == "m:1b t=0" and "corpus" not in multi.verdict


def test_the_light_table_of_corpus_metrics_agrees_with_the_registry():
    """`show` words its ranking from ``CORPUS_LEVEL`` without loading the metrics."""
    from evaluation.metrics import get_metric
    from evaluation.metrics._directions import CORPUS_LEVEL, HIGHER_IS_BETTER

    corpus = {m for m in HIGHER_IS_BETTER if get_metric(m).corpus_level}
    assert corpus == CORPUS_LEVEL


def test_the_monitor_names_the_corpus_figure_as_show_and_the_verdict_do(database_url):
    """The monitor's recent runs, series and configs across runs said "chrf 96.412" of
    the figure show and the verdict call "corpus chrf 96.4"."""
    _stored(database_url)
    home = TestClient(create_app(make_engine(database_url))).get("/").text
    recent = home.split('id="recent"')[1].split("</section>")[0]
    assert 't=0.7 <span class="muted">corpus chrf 96.' in recent
    series = home.split('id="series"')[1].split("</section>")[0]
    assert "corpus chrf 96." in series
    across = home.split('id="across"')[1].split("</h2>")[0]
    assert "corpus chrf" in across


def test_the_monitor_run_page_says_what_its_leaderboard_is_ranked_by(database_url):
    """The run page showed the leaderboard without the line `show`, the report and the
    view print under it."""
    _stored(database_url)
    run = TestClient(create_app(make_engine(database_url))).get("/e/nc/live").text
    assert "Ranked by chrf&#39;s corpus value (higher is better; the verdicts&#39;" in run
