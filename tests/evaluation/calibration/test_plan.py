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


def _world(people: dict[tuple[str, int], float], judge: float, cases: int = 36):
    """Configs A and B on ``cases`` cases in 9 groups, the judge's score ``judge``
    everywhere, people's where ``people`` has one."""
    rows_h, rows_j, gid = [], [], 0
    for config in ("A", "B"):
        for i in range(cases):
            gid += 1
            common = {
                "generation_id": gid,
                "config": config,
                "case_id": f"c{i}",
                "group": f"g{i % 9}",
                "criterion": "accuracy",
            }
            rows_j.append(common | {"value": judge})
            if (config, i) in people:
                rows_h.append(common | {"value": people[(config, i)]})
    return pd.DataFrame(rows_h), pd.DataFrame(rows_j)


def test_a_difference_of_zero_on_cases_rated_alike_is_a_likely_tie() -> None:
    """Newcomers' J8: a constant judge, every rated case 4 stars for both configs:
    rate-next read '+0.000 [+0.000, +0.000] ... about 1 more cases rated for both would
    settle it at this difference'. No number of cases settles a difference of 0."""
    from evaluation.calibration._plan import plan_lines

    human, judge = _world({(c, i): 0.75 for c in "AB" for i in range(10)}, judge=0.5)
    (metric,) = calibrate(human, judge)
    (open_,) = open_comparisons([metric])
    assert open_.more is None
    (line,) = [x for x in plan_lines([metric], {}, "edge") if "A − B" in x]
    assert "likely a tie" in line and "would settle it" not in line
    # what the old code answered: 0 ≤ 0 at the first case
    assert _settled_at(0.0, 10, 26, a=0.0, b=0.0, people=0.0) is None


def test_two_rated_cases_give_no_test_and_rate_next_asks_for_a_third() -> None:
    """Newcomers' J4: on 2 rated cases the difference read 'too few for an interval'
    beside 'p_adj 0.88' (Student's t on 1 df) and rate-next 'about 1 more cases ...
    would settle it'. Below 3 rated cases there is no test either: no p, never 'differ'."""
    from evaluation.calibration._plan import plan_lines
    from evaluation.calibration._render import calibration_lines

    people = {("A", 0): 1.0, ("A", 1): 0.0, ("B", 0): 0.25, ("B", 1): 1.0}
    human, judge = _world(people, judge=0.5)
    judge["value"] = [(i % 5) / 4 for i in range(len(judge))]  # a judge that varies
    (metric,) = calibrate(human, judge)
    (diff,) = metric.diffs
    assert diff.combined.estimate is not None and diff.combined.n_rated == 2
    assert diff.p_adjusted is None and not diff.significant
    shown = "\n".join(calibration_lines([metric]))
    assert "p_adj" not in shown and "too few for an interval" in shown
    (open_,) = open_comparisons([metric])
    assert open_.more == 1
    (line,) = [x for x in plan_lines([metric], {}, "edge") if "A − B" in x]
    assert "rate at least 1 more case for both for an interval and a test" in line
    assert "p_adj" not in line and "would settle it" not in line
