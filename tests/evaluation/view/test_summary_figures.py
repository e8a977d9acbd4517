"""Figures the experiment page and the grid show: a grid cell shared by several configs
shows an interval (its best config's), not the range of their means; parameter effects
list every parameter that varies; the leaderboard's latency is the p50 `show` and the
report print."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from evaluation.compare._leaderboard import aggregate_rows, load_leaderboard, render_text
from evaluation.storage.repository import generations_frame
from evaluation.view.matrix import quality_grid
from evaluation.view.summary import experiment_summary
from tests.support.review_db import build_review_db


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    # 4 configs: alpha t=0 and alpha t=0.2 share the model
    url = f"sqlite:///{tmp_path_factory.mktemp('figures') / 'r.db'}"
    return build_review_db(url, n_cases=9, temperatures=(0.0, 0.7, 1.0, 0.2))


def test_a_cell_of_several_configs_shows_its_best_configs_interval(db):
    with Session(db.engine) as session:
        grid = quality_grid(session, db.experiment, "model", "template_name")
        board = load_leaderboard(session, db.experiment).table.set_index("config")
    shared = grid.cells[("alpha:1b", "plain")]
    assert set(shared.configs) == {db.configs[0].hash, db.configs[3].hash}
    best = board.loc[list(shared.configs), "exact_match"].idxmax()
    assert best == db.configs[0].hash  # config 0 answers every case
    assert (shared.mean, shared.low, shared.high) == pytest.approx(
        tuple(board.loc[best, [f"exact_match{s}" for s in ("", "_ci_low", "_ci_high")]])
    )
    assert shared.low < shared.mean and "best of 2 configs" in shared.note


def test_parameter_effects_list_every_parameter_that_varies(db):
    with Session(db.engine) as session:
        summary = experiment_summary(session, db.experiment)
    rows = {e["parameter"]: e for e in summary.effects}
    assert set(rows) == {"temperature", "model"}
    assert rows["model"]["best"] == "alpha:1b"
    assert rows["model"]["note"].startswith("best config per value: alpha:1b 1.000")


def test_the_leaderboard_latency_is_the_one_show_and_the_report_print(tmp_path):
    """The page showed each config's mean latency (1.709 s) where `show --wide` and the
    report print its p50 (1.136 s) under the same config: one figure everywhere."""
    from evaluation.metrics import get_metrics
    from evaluation.storage.models import Generation
    from evaluation.storage.repository import replace_aggregates, scores_frame
    from tests.support.review_db import METRICS

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=5, temperatures=(0.0, 0.7))
    with Session(db.engine) as session:  # one slow answer a config: its mean is not its p50
        for config in db.configs:
            slow = session.exec(
                select(Generation).where(Generation.config_hash == config.hash)
            ).first()
            slow.latency_s = 9.0
            session.add(slow)
        session.flush()
        frame = generations_frame(session, db.experiment_id)
        rows = aggregate_rows(
            frame, scores_frame(session, db.experiment_id), get_metrics(METRICS), db.suite
        )
        replace_aggregates(session, db.experiment_id, rows)
        session.commit()
    with Session(db.engine) as session:
        summary = experiment_summary(session, db.experiment)
        board = load_leaderboard(session, db.experiment)
    ok = frame[frame["status"] == "ok"].groupby("config_hash")["latency_s"]
    wide = render_text(board, wide=True, columns=400).splitlines()
    assert wide[1].split()[-6:] == ["p50", "s", "p95", "s", "ok", "failed"]
    printed = {line.split()[1]: line.split()[-4] for line in wide[2 : 2 + len(summary.rows)]}
    shown = {r.config: r.latency_p50_s for r in summary.rows}
    assert shown == {c: f"{m:.3f}" for c, m in ok.median().items()} == printed
    assert all(f"{m:.3f}" != shown[c] for c, m in ok.mean().items())
    # the latency verdict names each config's mean (what its paired tests compare) beside
    # rows showing the p50, and did not say so (its 0.108 s where the row said 0.102)
    from fastapi.testclient import TestClient

    from evaluation.compare._comparison import compare_experiment
    from evaluation.compare._stored import save_comparison
    from evaluation.view.app import create_app

    with Session(db.engine) as session:
        save_comparison(session, compare_experiment(session, db.experiment_id))
        session.commit()
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/summary").text
    (latency,) = [v for v in page.split("<li>") if "on latency_s" in v]
    assert f"({ok.mean().min():.2f})" in latency  # its best config's mean
    assert "; latency_s here: each config&#39;s mean seconds over its cases, which its " in latency
    assert "not the median (p50) the leaderboard shows</li>" in latency
    # the HTML report's verdict on latency_s (a metric of the spec), beside its
    # leaderboard's p50, says it alike; it did not
    from evaluation.report import build_report
    from evaluation.storage.models import Experiment
    from evaluation.storage.repository import replace_scores

    with Session(db.engine) as session:
        experiment = session.get(Experiment, db.experiment_id)
        experiment.metrics = [*experiment.metrics, "latency_s"]
        replace_scores(session, frame["id"].tolist(), "latency_s", frame["latency_s"].tolist())
        scores = scores_frame(session, db.experiment_id)
        metrics = get_metrics(experiment.metrics)
        replace_aggregates(
            session, db.experiment_id, aggregate_rows(frame, scores, metrics, db.suite)
        )
        session.commit()
        report = build_report(session, db.experiment)
    latency = report.split("<h3>latency_s</h3>")[1].split("<img")[0]
    assert "; latency_s here: each config&#39;s mean seconds over its cases, which its " in latency
    assert "not the median (p50) the leaderboard shows</p>" in latency


def test_the_summary_page_flags_a_config_that_echoes_the_prompt(tmp_path):
    """`show` and the HTML report print "ECHOES THE PROMPT: ..."; the page did not."""
    from fastapi.testclient import TestClient

    from evaluation.storage.models import Aggregate, Experiment
    from evaluation.view.app import create_app

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=4, temperatures=(0.0, 0.7))
    with Session(db.engine) as session:
        experiment = session.get(Experiment, db.experiment_id)
        experiment.metrics = [*experiment.metrics, "echoes_prompt"]
        for config, share in zip(db.configs, (0.75, 0.0), strict=True):
            session.add(
                Aggregate(
                    experiment_id=db.experiment_id,
                    config_hash=config.hash,
                    metric="echoes_prompt",
                    n=4,
                    mean=share,
                    ci_low=share,
                    ci_high=share,
                )
            )
        session.add(experiment)
        session.commit()
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/summary").text
    flag = f"ECHOES THE PROMPT: {db.configs[0].hash} "
    assert flag in page and "repeats its prompt in 75% of outputs" in page
    assert f"ECHOES THE PROMPT: {db.configs[1].hash}" not in page
    again = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/summary").text
    assert flag in again  # the stored page keeps it


def test_ties_break_in_the_grid_and_by_value_as_on_the_leaderboard(tmp_path):
    """Two configs of one grid cell tied on the mean: the cell shows the one `show` ranks
    first (the lower median latency), not the first in the spec; so does the model's
    "best config per value", and the best value is the #1 config's."""
    from sqlalchemy import update

    from evaluation.compare._leaderboard import ranked_rows
    from evaluation.storage.models import Aggregate

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(url, n_cases=9, temperatures=(0.0, 0.7, 1.0, 0.2))
    first, later = db.configs[0].hash, db.configs[3].hash  # alpha t=0 and t=0.2
    with Session(db.engine) as session:
        board = load_leaderboard(session, db.experiment).table.set_index("config")
        mean = float(board.loc[first, "exact_match"])
        session.exec(  # a tie on the mean, with an interval of its own to tell it by
            update(Aggregate)
            .where(Aggregate.config_hash == later, Aggregate.metric == "exact_match")
            .values(mean=mean, ci_low=mean - 0.25, ci_high=mean + 0.01)
        )
        for config, p50 in ((first, 0.9), (later, 0.1)):
            session.exec(
                update(Aggregate)
                .where(Aggregate.config_hash == config, Aggregate.metric == "latency_p50_s")
                .values(mean=p50)
            )
        session.commit()
        top = ranked_rows(load_leaderboard(session, db.experiment))[0]["config"]
        grid = quality_grid(session, db.experiment, "model", "template_name")
        summary = experiment_summary(session, db.experiment)
    assert top == later  # the leaderboard: the tie goes to the lower median latency
    shared = grid.cells[("alpha:1b", "plain")]
    assert set(shared.configs) == {first, later}
    assert (shared.mean, shared.low) == pytest.approx((mean, mean - 0.25))  # later's
    assert summary.rows[0].config == later
    model = {e["parameter"]: e for e in summary.effects}["model"]
    assert model["best"] == "alpha:1b"


def test_the_other_metrics_verdicts_have_their_own_heading(tmp_path):
    """A newcomer read latency's verdict under "Verdict on exact_match": the page stored
    as a run ends (its compare stage's verdicts, then ``store_pages``) lists the other
    metrics' verdicts under a heading of their own, after the primary's."""
    import html
    import re

    from fastapi.testclient import TestClient

    from evaluation.compare._comparison import compare_experiment
    from evaluation.compare._stored import save_comparison
    from evaluation.storage.db import session_scope
    from evaluation.view.app import create_app
    from evaluation.view.stored import store_pages

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=4, temperatures=(0.0, 0.7))
    with session_scope(db.engine) as session:  # as the sweep's compare stage, then its end
        outcome = compare_experiment(session, db.experiment)
        save_comparison(session, outcome)
        store_pages(session, db.experiment, ending="completed")
    verdicts = {metric: v["verdict"] for metric, v in outcome.verdicts().items()}
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/summary").text
    section = html.unescape(page.split('<section id="verdict">')[1].split("</section>")[0])
    headings = re.findall(r"<h([23])[^>]*>([^<]*)</h\1>", section)
    assert headings == [("2", "Verdict on exact_match"), ("3", "On the other metrics")]
    primary, others = section.split("On the other metrics</h3>")
    assert verdicts["exact_match"] in primary and verdicts["exact_match"] not in others
    assert verdicts["latency_s"] in others and verdicts["latency_s"] not in primary


def test_a_metric_every_config_ties_on_puts_no_config_on_its_pareto_front():
    """Newcomer N14 (b): the page tagged a config "Pareto front: chrf, contains,
    exact_match" where exact_match was 0 for every config: on that front only for being
    the fastest. The page, its fronts and the report's leave such a front out."""
    from evaluation.report import gather
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.repository import get_experiment
    from tests.support.results_db import add_experiment, make_config, make_suite

    engine = make_engine("sqlite://")
    configs = [make_config(temperature=t) for t in (0.0, 0.7, 1.0)]
    contains = ([1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0])
    scores = {
        c: {"exact_match": [0.0] * 4, "contains": list(v)}
        for c, v in zip(configs, contains, strict=True)
    }
    with session_scope(engine) as session:
        add_experiment(session, "ties", make_suite(4), scores)
        get_experiment(session, "ties").status = "completed"
    with session_scope(engine) as session:
        summary = experiment_summary(session, "ties")
        report = gather(session, "ties")
    assert {f["quality"] for f in summary.fronts} == {"contains"}
    assert {f.quality for f in report.fronts} == {"contains"}
    tags = {row.label: row.fronts for row in summary.rows}
    assert all(fronts in ((), ("contains",)) for fronts in tags.values()), tags
    assert ("contains",) in tags.values()


def test_the_line_under_one_configs_board_says_what_n_is_not_every_config(tmp_path):
    """Newcomer ncmon-8: the page wrote "Every config: n= is num_predict, ..." under a
    board of one config (its label shown whole, sharing nothing), where `show` writes
    the key alone."""
    from fastapi.testclient import TestClient

    from evaluation.labels import NUM_PREDICT_KEY
    from evaluation.spec import Config, GenerationParams, PromptTemplate
    from evaluation.storage.db import make_engine
    from evaluation.view.app import create_app
    from tests.support.results_db import add_experiment, make_suite

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    one = Config("m:1b", GenerationParams(temperature=0.0, num_predict=32), PromptTemplate("x"))
    with Session(engine) as session:
        add_experiment(session, "one", make_suite(3), {one: {"exact_match": [1.0, 0.0, 1.0]}})
        session.commit()
        assert experiment_summary(session, "one").settings_line == NUM_PREDICT_KEY
    page = TestClient(create_app(engine)).get("/e/one/summary").text
    assert f"{NUM_PREDICT_KEY}.</p>" in page and "Every config" not in page
