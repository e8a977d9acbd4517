"""Which outputs people should rate next: open comparisons and how many ratings settle
them; the review that rates them draws unrated cases at random and stays blind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.calibration import calibrate
from evaluation.calibration._plan import _settled_at, open_comparisons
from evaluation.review.queue import pair_view, prepare_queue
from evaluation.storage.db import session_scope
from tests.support.calibration_db import build_calibration_db


def frames(diff: float, rated: int, cases: int = 300, seed: int = 0):
    """People's and a biased judge's unit scores of configs A and B on ``cases`` cases;
    people rated the first ``rated``; B is ``diff`` below A for people."""
    rng = np.random.default_rng(seed)
    rows_h, rows_j, gid = [], [], 0
    for config, shift in (("A", 0.0), ("B", -diff)):
        for i in range(cases):
            truth = 0.5 + shift + rng.normal(0, 0.15)
            gid += 1
            common = {
                "generation_id": gid,
                "config": config,
                "case_id": f"c{i}",
                "group": None,
                "criterion": "accuracy",
            }
            rows_j.append(common | {"value": truth + 0.1 + rng.normal(0, 0.1)})
            if i < rated:
                rows_h.append(common | {"value": truth + rng.normal(0, 0.05)})
    return pd.DataFrame(rows_h), pd.DataFrame(rows_j)


def test_an_open_difference_says_how_many_ratings_settle_it() -> None:
    human, judge = frames(0.06, rated=20, seed=2)
    (metric,) = calibrate(human, judge)
    (open_,) = open_comparisons([metric])
    assert not open_.diff.significant and open_.rated == 20
    assert open_.more == 25
    # Rating that many more (the same world, more of it rated) settles it.
    human, judge = frames(0.06, rated=20 + open_.more, seed=2)
    (metric,) = calibrate(human, judge)
    assert metric.diffs[0].significant


def test_one_output_judged_and_rated_is_shown_and_rate_next_says_what_it_lacks() -> None:
    """The newcomer's N8: with one output both judged and rated, judge-card counted it,
    but show printed no calibrated block and rate-next said no judge had outputs people
    rated (judge, then review), which the user had done."""
    from evaluation.calibration._plan import plan_lines
    from evaluation.calibration._render import calibration_lines
    from evaluation.report.html import _calibrated

    human, judge = frames(0.1, rated=1, cases=5)
    human = human[human["config"] == "A"]  # people rated one output, of one config
    (metric,) = calibrate(human, judge)
    assert metric.n_rated == 1 and [e.config for e in metric.configs] == ["A"]
    shown = "\n".join(calibration_lines([metric]))
    assert "people's ratings of 1 (PPI++)" in shown and "—" in shown
    assert len(_calibrated(metric, {})) == 3  # the report's: no table of no differences
    assert plan_lines([metric], {"A": "a-label"}, "calib") == [
        "no combined comparison could be estimated, so none can be called settled:",
        "  accuracy: people rated judged outputs of one config only (a-label); rate at "
        "least 2 cases of each config (evalflow review calib)",
    ]


def test_what_a_settled_comparison_needs() -> None:
    assert _settled_at(0.0, 10, 100, a=1.0, b=1.0, people=1.0) is None
    # SE² = min(A/n + B/(K − n), V/n), K = 100: at n = 19, 0.05/19 + 0.01/81 = 0.002755;
    # at n = 20, 0.0025 + 0.000125 = 0.002625; the target 0.0519² = 0.002694 lies between.
    assert _settled_at(0.0519, 10, 90, a=0.05, b=0.01, people=1.0) == 10


def test_review_next_rates_unrated_cases_of_the_open_comparison(database_url: str) -> None:
    db = build_calibration_db(database_url, n_cases=12, rated_cases=6)
    queue = prepare_queue(
        db.engine,
        "calib",
        "bo",
        configs=[c.hash for c in db.configs[:2]],
        per_pair=None,
        unrated_only=True,
    )
    with session_scope(db.engine) as session:
        views = [pair_view(session, queue, p) for p in queue.pair_ids]
    assert sorted(v["case_id"] for v in views) == [f"c{i:02d}" for i in range(6, 12)]
    for v in views:  # blind: nothing of the configs, the judge or latency
        assert v["identities"] is None and set(v["outputs"]["A"]) == {"text"}
        assert "judge" not in str(v).lower()


def test_rate_next_and_review_next_name_the_same_comparison(database_url: str, capsys) -> None:
    import argparse

    from flows.cli.app import main
    from flows.cli.review import _next_to_rate

    db = build_calibration_db(database_url, n_cases=12, rated_cases=6)
    assert main(["--database", database_url, "rate-next", "calib"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Open comparisons, the ones one more rating helps most first:"
    assert out[-1].startswith("next: evalflow review calib --next --pairs ")
    args = argparse.Namespace(database=database_url, experiment="calib", pairs=4)
    configs, pairs = _next_to_rate(args)
    hashes = {c.hash: c for c in db.configs}
    first = out[1].split(": ")[1]  # "A label − B label"
    assert set(configs) <= set(hashes) and pairs == 4
    assert first.startswith(hashes[configs[0]].model)


def test_rate_next_says_why_no_combined_difference_exists() -> None:
    from evaluation.calibration._plan import plan_lines

    # Every judged output rated: nothing judge-only to combine.
    human, judge = frames(0.06, rated=30, cases=30)
    lines = plan_lines(calibrate(human, judge), {}, "exp")
    assert lines[0].startswith("no combined comparison could be estimated")
    assert "judge more outputs than people rate" in lines[1]
    assert not any("settled: no rating needed" in line for line in lines)
    # One rated case per config: too few.
    human, judge = frames(0.06, rated=1, cases=30)
    lines = plan_lines(calibrate(human, judge), {}, "exp")
    assert lines[0].startswith("no combined comparison could be estimated")
    assert "rate at least 2 cases per config" in lines[1]
