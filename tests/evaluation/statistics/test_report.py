import math

import numpy as np
import pandas as pd
import pytest

from evaluation.statistics import analyze, render_markdown, table_rows
from tests.evaluation.statistics._rows import long_rows


def _report(**kw):
    rng = np.random.default_rng(5)
    difficulty = rng.random(80)
    acc = {
        c: list((difficulty < q).astype(float))
        for c, q in {"m1 t=0": 0.8, "m1 t=1": 0.6, "m2 t=0": 0.5}.items()
    }
    acc["m2 t=0"][:5] = [np.nan] * 5
    rows = pd.concat(
        [
            long_rows(acc, metric="acc"),
            long_rows(
                {"m1 t=0": [4.0, 3.0], "m1 t=1": [4.0], "m2 t=0": [4.0, 4.0]}, metric="stars"
            ),
        ]
    )
    facts = pd.DataFrame(
        {
            "config": ["m1 t=0", "m1 t=1", "m2 t=0"],
            "temperature": [0.0, 1.0, 0.0],
            "quality": [0.8, 0.6, 0.5],
            "latency_p95_s": [1.2, 1.3, 0.4],
            "energy_j": [np.nan] * 3,
        }
    )
    return analyze(rows, score_types={"acc": "binary", "stars": "ordinal"}, facts=facts, **kw)


def test_markdown_carries_the_banner_verdicts_tables_and_fronts():
    text = render_markdown(_report(delta=0.05), banner="SIMULATED — not real model output")
    assert text.splitlines()[0] == "**SIMULATED — not real model output**"
    assert "## acc (binary, higher is better)" in text
    assert "**Verdict:**" in text and "Holm-adjusted" in text
    assert "| m1 t=0 | m1 t=1 |" in text and "exact McNemar" in text
    assert "cases for δ = 0.05" in text
    assert "### Parameter effects" in text and "| temperature |" in text
    assert "## Pareto front: quality vs p95 latency (s)" in text
    assert "energy_j" not in text  # not recorded → no energy front


def test_bad_inputs_read_as_undefined_never_nan_or_zero():
    text = render_markdown(_report(), banner="run 1")
    stars = text[text.index("## stars") :]
    # m1 t=1 has a single star rating: n = 1 → undefined SE; m2 t=0 has zero variance
    assert "n = 1: standard error and interval undefined" in stars
    assert "zero variance" in stars
    assert "nan" not in text.lower().replace("nan)", "")  # "(NaN)" as a reason is fine
    assert "unscorable (NaN) for m2 t=0: 5" in text


def test_table_rows_are_plain_values_with_none_for_undefined():
    rows = table_rows(_report())
    assert set(rows) == {"means", "comparisons", "verdicts", "parameter_effects", "pareto"}
    for table in rows.values():
        for row in table:
            for value in row.values():
                assert not (isinstance(value, float) and math.isnan(value))
    one = next(r for r in rows["means"] if r["metric"] == "stars" and r["config"] == "m1 t=1")
    assert one["se"] is None and one["ci_low"] is None
    assert {r["config"] for r in rows["pareto"]} == {"m1 t=0", "m2 t=0"}


def test_fdr_adjustment_and_baseline_are_named():
    text = render_markdown(_report(adjust="fdr_bh", baseline="m2 t=0"), banner="b")
    assert "each versus m2 t=0; Benjamini–Hochberg-adjusted" in text


def test_a_baseline_tied_on_the_mean_is_not_said_to_be_compared_with_itself():
    # A newcomer read "no verdict: sim-large t=0 (0.778) was compared with the baseline
    # (sim-large t=0) only": the baseline tied another config, named first.
    same = [1.0, 0.0, 1.0, 1.0] * 10
    rows = long_rows({"b t=0": same, "c t=1": same, "d t=0": [0.0, 1.0] * 20}, metric="acc")
    report = analyze(rows, score_types={"acc": "binary"}, baseline="b t=0")
    text = render_markdown(report, banner="b")
    assert (
        "no verdict on acc: the baseline b t=0 (0.750) ties on the mean with c t=1, compared "
        "with the baseline only; compare all pairs to name a winner"
    ) in text


def test_banner_must_be_one_line_and_score_types_complete():
    with pytest.raises(ValueError, match="banner"):
        render_markdown(_report(), banner="")
    with pytest.raises(ValueError, match="no score type"):
        analyze(long_rows({"a": [1.0]}, metric="bleu"), score_types={})


def test_the_pairs_interval_is_labelled_unadjusted_beside_the_adjusted_p():
    # compare printed "+0.110 [+0.027, +0.193] 0.094": an interval excluding 0 beside a
    # Holm-adjusted p that is not significant, with nothing saying which is adjusted.
    text = render_markdown(_report(), banner="b")
    assert "not adjusted for multiple comparisons; p adj.: Holm-adjusted" in text
    fdr = render_markdown(_report(adjust="fdr_bh"), banner="b")
    assert "p adj.: Benjamini–Hochberg-adjusted" in fdr


def test_markdown_marks_a_pair_whose_interval_alone_excludes_0_as_compare_does():
    """`compare --markdown` and the comparison artifact said "significant: no" beside
    [0.01469, 0.1468] with no mark, where compare's text table ends that row in "†"
    and says what it means: the same mark and line, from one source."""
    from evaluation.compare import render_comparison_text

    report = _report()
    text = render_markdown(report, banner="b")
    acc = text.split("## acc")[1].split("\n## ")[0]
    cells = {
        tuple(row.split(" | ")[:2]): row.split(" | ")[8]
        for row in acc.splitlines()
        if "McNemar |" in row
    }
    assert cells == {("| m1 t=0", "m1 t=1"): "yes", ("| m1 t=0", "m2 t=0"): "yes",
                     ("| m1 t=1", "m2 t=0"): "no †"}  # fmt: skip
    legend = "† interval unadjusted (it excludes 0); not significant after Holm's adjustment"
    assert legend in acc.splitlines()
    rows = [r for r in table_rows(report)["comparisons"] if r["metric"] == "acc"]
    terminal = render_comparison_text("e", rows, {}, simulated=False).splitlines()
    assert terminal[-1] == legend
    assert [line.split()[-1] for line in terminal if "[+0.015, +0.147]" in line] == ["†"]
