"""Combined estimates read from a review database: the judge's bias does not reach the
combined mean, the people-only and judge-only columns are what they say, and show
prints which is which."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.calibration import load_calibration, ppi_mean
from evaluation.calibration._render import calibration_text
from evaluation.storage.db import session_scope
from tests.support.calibration_db import build_calibration_db, judge_stars, people_stars


@pytest.fixture
def calib(database_url: str):
    return build_calibration_db(database_url)


def unit(stars: int) -> float:
    return (stars - 1) / 4


def test_per_config_estimates_are_ppi_of_the_case_scores(calib) -> None:
    with session_scope(calib.engine) as session:
        (metric,) = load_calibration(session, calib.experiment_id)
    assert (metric.criterion, metric.judge_name, metric.n_judged, metric.n_rated) == (
        "accuracy",
        "ollama:judge-model",
        36,
        18,
    )
    first = next(e for e in metric.configs if e.config == calib.configs[0].hash)
    y = [unit(people_stars(0, i)) for i in range(6)]
    f = [unit(judge_stars(0, i)) for i in range(12)]
    expected = ppi_mean(
        y,
        f[:6],
        f[6:],
        groups_rated=[f"g{i % 3}" for i in range(6)],
        groups_unrated=[f"g{i % 3}" for i in range(6, 12)],
    )
    assert first.combined.estimate == pytest.approx(expected.estimate)
    assert first.combined.se == pytest.approx(expected.se)
    assert first.combined.n_clusters == 3  # the suite's groups g0, g1, g2
    assert first.people.estimate == pytest.approx(np.mean(y)) and first.people.n_rated == 6
    assert first.judge.estimate == pytest.approx(np.mean(f)) and first.judge.n_rated == 12
    # The judge grades config 0 a star above the people; combined, that bias is gone.
    assert first.judge.estimate - first.people.estimate > 0.15
    assert abs(first.combined.estimate - first.people.estimate) < 0.05


def test_differences_are_adjusted_over_the_pairs(calib) -> None:
    with session_scope(calib.engine) as session:
        (metric,) = load_calibration(session, calib.experiment_id, adjust="holm")
    assert len(metric.diffs) == 3 and metric.adjustment == "holm"
    raw = sorted(d.combined.p_value() for d in metric.diffs)
    adjusted = sorted(d.p_adjusted for d in metric.diffs)
    assert adjusted[0] == pytest.approx(min(1.0, 3 * raw[0]))
    assert all(d.combined.n_rated == 6 for d in metric.diffs)


def test_show_says_which_numbers_it_shows(calib, database_url: str, capsys) -> None:
    from flows.cli.app import main

    assert main(["--database", database_url, "show", "calib"]) == 0
    out = capsys.readouterr().out
    assert (
        "judge_accuracy, combined: judge ollama:judge-model on 36 outputs calibrated to "
        "people's ratings of 18 (PPI++)" in out
    )
    assert "judge only" in out and "people only (n)" in out and "combined (λ)" in out


def test_nothing_without_ratings(database_url: str) -> None:
    db = build_calibration_db(database_url, rated_cases=0)
    with session_scope(db.engine) as session:
        assert calibration_text(session, "calib") == ""


def test_compare_adds_the_combined_differences(calib, database_url, capsys, monkeypatch) -> None:
    # The stored comparison is compare's own business (tests/flows/cli): left out here.
    import flows.cli.stats as stats
    from flows.cli.app import main

    monkeypatch.setattr(
        stats,
        "_current_comparison",
        lambda args: dict.fromkeys(
            ("run_label", "simulated", "comparisons", "verdicts", "markdown")
        ),
    )
    monkeypatch.setattr("evaluation.compare.render_comparison_text", lambda *a, **k: "TABLE")
    assert main(["--database", database_url, "compare", "calib", "--adjust", "fdr_bh"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("TABLE\n\njudge_accuracy, combined: judge ollama:judge-model")
    assert "differences, combined, Benjamini–Hochberg over 3 pair(s) at α 0.05" in out
    assert "(judge only " in out


def test_the_report_shows_the_three_ways(calib) -> None:
    from evaluation.report.html import _calibrated
    from evaluation.report.ratings import ratings_summary

    with session_scope(calib.engine) as session:
        summary = ratings_summary(session, calib.experiment_id)
    (metric,) = summary.calibrated
    heading, source, configs, diffs = _calibrated(metric, {})
    assert heading.text == "judge_accuracy calibrated to people"
    assert source.text.startswith("Combined: judge ollama:judge-model on 36 outputs")
    assert list(configs.head[:4]) == [
        "config",
        "judge only",
        "people only (n)",
        "combined [95% CI]",
    ]
    assert diffs.head[-2] == "p (Holm over 3 pairs at α 0.05)" and len(diffs.rows) == 3


def test_the_view_summary_shows_them_and_a_new_rating_refreshes_it(calib) -> None:
    from evaluation.review.store import record_rating
    from evaluation.storage.repository import generations_frame
    from evaluation.view.stored import summary_page

    with session_scope(calib.engine) as session:
        first = summary_page(session, "calib").calibrated
    assert first[0].startswith("judge_accuracy, combined: judge ollama:judge-model on 36 ")
    with session_scope(calib.engine) as session:
        unrated = generations_frame(session, calib.experiment_id).iloc[-1]  # case c11
        record_rating(
            session, rater="bo", generation_id=int(unrated["id"]), criterion="accuracy", stars=5
        )
    with session_scope(calib.engine) as session:
        again = summary_page(session, "calib").calibrated
    assert "people's ratings of 19" in again[0]


def test_compare_markdown_has_the_combined_block(calib, database_url, capsys, monkeypatch):
    import flows.cli.stats as stats
    from flows.cli.app import main

    stored = dict.fromkeys(("run_label", "simulated", "comparisons", "verdicts"))
    monkeypatch.setattr(stats, "_current_comparison", lambda args: stored | {"markdown": "MD"})
    assert main(["--database", database_url, "compare", "calib", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MD\n## Judges calibrated to people\n\n### judge_accuracy\n\n")
    tables = out.split("\n\n")
    assert tables[2] == (
        "combined: judge ollama:judge-model on 36 outputs calibrated to people's ratings of "
        "18 (PPI++) — NOT presented as calibrated: 18 rated outputs, at least 30 needed "
        "(`evalflow judge-card` says why); 95% intervals, unit scale (stars − 1)/4."
    )
    configs = tables[3].splitlines()
    assert configs[:2] == [
        "| config | judge only | people only | n | combined | λ |",
        "|---" * 6 + "|",
    ]
    assert len(configs) == 2 + 3 and all(" | 6 | " in row for row in configs[2:])
    assert tables[4] == "Differences, combined, Holm over 3 pair(s) at α 0.05:"
    pairs = tables[5].splitlines()
    assert pairs[0] == "| pair | combined | rated cases | p_adj | differ | judge only |"
    assert len(pairs) == 2 + 3 and all(" − " in row and " | 6 | " in row for row in pairs[2:])


def test_a_config_the_judge_scored_once_shows_that_score(database_url: str) -> None:
    """Newcomers' C12: a config the judge scored once read "—" under "judge only", as if
    it had scored nothing; its one score is its mean, shown with why it has no interval."""
    from evaluation.report.html import _calibrated
    from evaluation.review.store import record_rating
    from evaluation.storage.repository import generations_frame
    from tests.support.calibration_db import JUDGE, _accuracy
    from tests.support.review_db import build_review_db

    db = build_review_db(database_url, n_cases=12, name="calib")
    once = db.configs[2].hash
    with session_scope(db.engine) as session:
        order = [c.hash for c in db.configs]
        for g in generations_frame(session, db.experiment_id).itertuples():
            k, i = order.index(g.config_hash), int(str(g.case_id)[1:])
            if g.config_hash == once and i > 0:
                continue  # the judge scored the third config's first case only
            session.add(_accuracy(db, JUDGE, int(g.id), judge_stars(k, i)))
            if i < 6:
                rating = {"criterion": "accuracy", "stars": people_stars(k, i)}
                record_rating(session, rater="ana", generation_id=int(g.id), **rating)
    with session_scope(db.engine) as session:
        (metric,) = load_calibration(session, db.experiment_id)
        shown = calibration_text(session, "calib")
    judged_once = next(e for e in metric.configs if e.config == once)
    assert judged_once.judge.estimate == unit(judge_stars(2, 0)) and judged_once.judge.ci is None
    model = db.configs[2].model
    (row,) = [line for line in shown.splitlines() if line.startswith(f"  {model} ")]
    one = f"{unit(judge_stars(2, 0)):.3f} (1 case, no CI)"
    assert row.split(maxsplit=2)[2].startswith(one)  # the judge-only column
    assert row.count("(1 case, no CI)") == 2  # and the people's one rating of it
    diff = unit(judge_stars(0, 0)) - unit(judge_stars(2, 0))
    assert f"(judge only {diff:+.3f} (1 case, no CI))" in shown
    _, _, configs, _ = _calibrated(metric, {})
    (html_row,) = [r for r in configs.rows if r[0] == once]
    assert html_row[1] == one


def test_no_surface_points_to_a_judge_column_the_leaderboard_lacks(
    calib, database_url: str, tmp_path, capsys
) -> None:
    """Newcomers' J7: the view's footnote said "Judge only: the judge's scores alone (the
    leaderboard's judge_* columns)" and the docs "as the leaderboard's `judge_*` column";
    no leaderboard has one (it ranks on the experiment's own metrics). The judge's mean is
    the block's judge-only column, and each output's judge_* score is on its page."""
    from flows.cli.app import main

    assert main(["--database", database_url, "show", "calib"]) == 0
    board, block = capsys.readouterr().out.split("judge_accuracy, combined:")
    assert "judge_" not in board and "judge only" in block
    out = tmp_path / "site"
    assert main(["--database", database_url, "view", "calib", "--export", str(out)]) == 0
    summary = (out / "summary.html").read_text()
    assert "Judges calibrated to people" in summary
    assert "judge_* columns" not in summary and "has no judge column" in summary
