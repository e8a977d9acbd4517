"""The judge-versus-people intervals as the user reads them: cut to the scale of what they
are intervals of, and, where there is none to give (too few cases, every case the
same), why, in words. P4: two ratings read [0.500, 0.500] and a judge's mean over a
few cases [-0.419, 1.419] for a score in [0, 1]."""

from __future__ import annotations

import re

import pandas as pd

from evaluation.calibration import calibrate, ppi_mean

# config -> [(case, judge's unit score, people's or None)]
WORLD = {
    # people rated three cases, all 0.5: a point interval, at any n
    "A": [("c0", 0.5, 0.5), ("c1", 0.75, 0.5), ("c2", 0.25, 0.5)]
    + [(f"c{i}", 0.5, None) for i in range(3, 8)],
    # the judge scored three cases 0, 1, 1: t interval [-0.768, 2.101]; people's 0.25, 0.5,
    # 0.75: [-0.121, 1.121]
    "B": [("c0", 0.0, 0.25), ("c1", 1.0, 0.5), ("c2", 1.0, 0.75)],
    # two ratings, 0.25 and 0.75: t on 1 degree of freedom, [-2.677, 3.677]
    "C": [("c0", 0.25, 0.25), ("c1", 0.75, 0.75)] + [(f"c{i}", 0.5, None) for i in range(2, 8)],
}


def frames(world=WORLD) -> tuple[pd.DataFrame, pd.DataFrame]:
    human, judge, gid = [], [], 0
    for config, rows in world.items():
        for case, f, y in rows:
            gid += 1
            common = {
                "generation_id": gid,
                "config": config,
                "case_id": case,
                "group": None,
                "criterion": "accuracy",
            }
            judge.append(common | {"value": f})
            if y is not None:
                human.append(common | {"value": y})
    return pd.DataFrame(human), pd.DataFrame(judge)


def intervals(text: str) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in re.findall(r"\[([-+]?[\d.]+), ([-+]?[\d.]+)\]", text)]


def test_every_surface_cuts_to_the_scale_and_says_why_there_is_none() -> None:
    from evaluation.calibration._plan import plan_lines
    from evaluation.calibration._render import calibration_lines, calibration_markdown
    from evaluation.report.html import _calibrated

    human, judge = frames()
    (metric,) = calibrate(human, judge, order=["A", "B", "C"])
    a, b, c = metric.configs
    # the stored figures are unchanged: outside the scale, a point, on two ratings
    assert b.judge.ci[0] < -0.7 and b.judge.ci[1] > 2.0
    assert a.people.ci == (0.5, 0.5) and c.people.n_rated == 2
    lines = "\n".join(calibration_lines([metric]))
    markdown = "\n".join(calibration_markdown([metric]))
    _, _, configs, diffs = _calibrated(metric, {})
    html = "\n".join(" | ".join(map(str, r)) for r in configs.rows + diffs.rows)
    plan = "\n".join(plan_lines([metric], {}, "exp"))
    for text in (lines, markdown, html, plan):
        shown = intervals(text.replace("\u00a0", " "))
        assert all(-1 <= lo < hi <= 1 for lo, hi in shown), text  # cut, and no point
    assert "A − C: -0.167 (2 rated cases: too few for an interval, 3 needed) on 2" in plan
    for text in (lines, markdown, html):
        assert all(0 <= lo < hi <= 1 for lo, hi in intervals(text.split("ifferences")[0]))
        assert "0.667 [0.000, 1.000]" in text.replace("\u00a0", " ")  # B's judge, cut
        assert "0.500 (3 rated cases, all the same: no interval)" in text  # A's people
        assert "0.500 (2 rated cases: too few for an interval, 3 needed)" in text  # C's
    (row_a,) = [r for r in configs.rows if r[0] == "A"]
    assert row_a[3] == "0.500 (3 rated cases, all the same: no interval)"  # combined, λ 0


def test_a_difference_with_no_spread_is_no_test_either() -> None:
    """Two configs whose rated cases all differ alike: standard error 0; it read p 0 and
    "differ" beside a point interval."""
    world = {
        "A": [(f"c{i}", 0.75, 0.75 if i < 3 else None) for i in range(8)],
        "B": [(f"c{i}", 0.25, 0.25 if i < 3 else None) for i in range(8)],
    }
    (metric,) = calibrate(*frames(world))
    (d,) = metric.diffs
    assert d.combined.se == 0 and d.combined.p_value() is None
    assert d.p_adjusted is None and not d.significant
    from evaluation.calibration._plan import plan_lines
    from evaluation.calibration._render import calibration_lines

    shown = "\n".join(calibration_lines([metric]))
    assert "+0.500 (3 rated cases, all the same: no interval) on 3 rated cases  (judge" in shown
    assert "differ" not in shown.split("differences")[1]
    (line,) = [x for x in plan_lines([metric], {}, "exp") if "A − B" in x]
    assert line.endswith("every rated case gives the same difference; rate more cases")


def test_the_judge_card_cuts_and_says_why() -> None:
    from evaluation.calibration._card import JudgeCard, Line, card_text

    card = JudgeCard(
        judge="ollama:j",
        criteria=("accuracy",),
        rated={"accuracy": 2},
        agreement=(Line("accuracy", None, None, 2, "2 outputs: rank correlation undefined"),),
        offset=(Line("accuracy", 0.25, (0.25, 0.25), 2),),
        position=Line("chose the output shown first", 1.0, (0.158, 1.0), 2, "p = 0.5"),
        contradictions=None,
        length=(),
        self_preference=(),
        drift=(Line("accuracy", 0.1, (-1.4, 1.6), 5, "40% of grades moved; 1 other run(s)"),),
        min_ratings=30,
    )
    text = card_text(card)
    assert "offset judge − people +0.250 (2 outputs: too few for an interval, 3 needed)" in text
    assert "chose the output shown first: 1.000 [0.158, 1.000] of 2" in text  # exact: kept
    assert "accuracy: +0.100 [-1.000, +1.000]; n 5" in text


def test_the_minimum_and_the_cut() -> None:
    from evaluation.calibration._shown import MIN_INTERVAL, shown_interval

    assert shown_interval((-0.2, 1.3), MIN_INTERVAL) == ((0.0, 1.0), "")
    assert shown_interval((-0.2, 1.3), 2)[0] is None
    assert shown_interval((0.5, 0.5), 30) == (None, "30 cases, all the same: no interval")
    assert shown_interval(None, 1) == (None, "")
    # the stored estimate keeps its interval as computed
    est = ppi_mean([0.5, 0.5], [0.0, 0.0], [], lam=0.0)
    assert est.ci == (0.5, 0.5) and est.p_value() is None
