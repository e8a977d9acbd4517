"""Issue 50: the pooling assumptions tested on the data they pool,
and what to measure next."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evaluation.spec._params import NAMES
from selection._measure_next import measure_next, needs_cases_note, unrun_cases
from selection._notes import assumptions_note
from selection.multilevel import fit, fit_checked
from selection.shrinkage import latency_checks


def _grid() -> pd.DataFrame:
    rows = list(itertools.product(("m1", "m2", "m3", "m4"), ("plain", "cot"), (0.0, 0.3, 0.7)))
    frame = pd.DataFrame(rows, columns=["model", "template", "temperature"])
    frame.index = [f"c{i}" for i in range(len(frame))]
    return frame


def _quality(factors: pd.DataFrame, m1_hot_cost: float) -> pd.Series:
    base = factors["model"].map({"m1": 0.4, "m2": 0.55, "m3": 0.7, "m4": 0.8})
    hot = factors["temperature"].astype(float)
    own = m1_hot_cost * hot * (factors["model"] == "m1")
    return base - 0.05 * hot + 0.03 * (factors["template"] == "cot") - own


def test_temperature_pooled_across_models_is_dropped_where_one_model_departs():
    # m1 loses 0.25 per unit of temperature, the others 0.05: one variance for the
    # model × temperature block shrinks m1's departure toward the others'; the check
    # rejects pooling for m1 only, and the refit gives m1 its own temperature effects.
    factors = _grid()
    truth = _quality(factors, m1_hot_cost=0.2)
    rng = np.random.default_rng(3)
    v = pd.Series(2.5e-4, index=factors.index)
    y = truth + rng.normal(0, 0.016, len(truth))
    result = fit_checked(y, v, factors)
    failed = {(c.a, c.b, c.level) for c in result.checks if not c.holds}
    assert ("model", "temperature", "m1") in failed
    assert not any(level in {"m2", "m3", "m4"} for a, b, level in failed if b == "temperature")
    assert result.unpooled == (("model", "temperature", "m1"),)
    assert set(fit(y, v, factors).mean.index) == set(result.mean.index)
    assert "temperature effects of m1" in assumptions_note(list(result.checks), "code")


def test_pooling_the_data_agree_with_is_kept():
    factors = _grid()
    truth = _quality(factors, m1_hot_cost=0.0)
    rng = np.random.default_rng(4)
    v = pd.Series(2.5e-4, index=factors.index)
    result = fit_checked(truth + rng.normal(0, 0.016, len(truth)), v, factors)
    assert result.checks and all(c.holds for c in result.checks)
    assert result.unpooled == ()
    note = assumptions_note(list(result.checks), "code")
    assert "dropped" not in note and "temperature pooled ×4" in note


def test_latency_is_not_pooled_over_sampling_for_a_model_whose_length_follows_it():
    # Two models, configs that differ only in temperature; m1's median latency doubles
    # with temperature (longer answers), m2's does not.
    configs = pd.DataFrame(
        [
            {name: None for name in NAMES}
            | {"model": m, "template": "plain", "template_text": "{input}", "temperature": t}
            for m in ("m1", "m2")
            for t in (0.0, 0.3, 0.7, 1.0)
        ]
    )
    configs.index = [f"c{i}" for i in range(len(configs))]
    median = np.where(configs["model"] == "m1", 1.0 + configs["temperature"], 1.0)
    evidence = pd.DataFrame(
        {
            "config_hash": configs.index,
            "task_type": "code",
            "latency_p50": median,
            "log_latency_var": 0.04,
            "n_latency": 40,
        }
    )
    checks = {c.level: c for c in latency_checks(SimpleNamespace(configs=configs), evidence)}
    assert not checks["m1"].holds and checks["m2"].holds
    assert "output length independent of sampling" in checks["m1"].describe()


def test_what_to_measure_next_names_the_few_candidates_that_could_beat_the_pick():
    table = pd.DataFrame(
        {
            "model": "m",
            "template": "plain",
            "template_text": "{input}",
            "quality": [0.70, 0.66, 0.60, 0.69],
            "quality_low": [0.65, 0.50, 0.40, 0.66],
            "quality_high": [0.75, 0.82, 0.72, 0.72],
            "measured_n_cases": [80, 0, 10, 200],
        },
        index=["pick", "wide", "weak", "settled"],
    )
    unrun = {"weak": {"s": 4}}  # 4 of suite s's cases it was not run on
    named = measure_next(table, "pick", unrun=unrun)
    assert [(index, suites) for index, suites, _ in named] == [("wide", ()), ("weak", ("s",))]
    assert named[0][2].startswith("measure m tpl=plain (hash wide): ")
    assert "never run on this task type" in named[0][2]
    assert named[1][2].startswith(
        "measure more of m tpl=plain (10 cases so far, 4 more on s) (hash weak) on s: "
    )
    assert measure_next(table.loc[["pick", "settled"]], "pick") == []
    # Where quality cannot decide (every measured config scored the same), more cases of
    # a measured config cannot change the answer: only never-run configs are named.
    flat = measure_next(table, "pick", unrun=unrun, quality_decides=False)
    assert [index for index, _, _ in flat] == ["wide"]
    # Run on every case of the task type: a rerun counts once, so more of it is nothing new.
    assert [index for index, _, _ in measure_next(table, "pick")] == ["wide"]
    note, brief = needs_cases_note(table, "pick", "qa", {})
    assert note.startswith("m tpl=plain may beat the pick, but it was run on")
    assert "all 10 qa cases" in note and "the task type needs more cases" in note
    assert brief == (
        "m tpl=plain may beat the pick: only more qa cases can tell (the answer without -q "
        "says how)"
    )
    assert needs_cases_note(table, "pick", "qa", unrun) is None


def test_the_cases_a_config_was_not_run_on_are_the_task_types_others_by_suite():
    scores = pd.DataFrame(
        {
            "config_hash": ["a"] * 5 + ["b"] * 2 + ["c"],
            "task_type": ["qa"] * 7 + ["code"],
            "case": ["s/c0", "s/c1", "s/c2", "t/c0", "t/c1", "s/c0", "s/c1", "u/c0"],
            "quality": 1.0,
        }
    )
    model = SimpleNamespace(case_scores=scores)
    assert unrun_cases(model, "qa") == {"b": {"s": 1, "t": 2}}
    # cases no config was run on are what a config run on all the others lacks
    assert unrun_cases(model, "qa", {"s": 4, "t": 0}) == {"a": {"s": 4}, "b": {"s": 1, "t": 2}}
    assert unrun_cases(model, "code") == {}


@pytest.mark.parametrize("checks", [[]])
def test_no_checks_no_note(checks):
    assert assumptions_note(checks, "qa") is None


def test_templates_added_alike_for_every_model_is_dropped_where_size_turns_them():
    # Chain-of-thought helps the largest model (m4: +0.12) and hurts the smallest
    # (m1: −0.12), a fixed +0.03 for the two between: "templates add the same for every
    # model" fails for m1 and m4, and their template effects become their own.
    factors = _grid()
    turn = factors["model"].map({"m1": -0.15, "m2": 0.0, "m3": 0.0, "m4": 0.09})
    truth = _quality(factors, m1_hot_cost=0.0) + turn * (factors["template"] == "cot")
    rng = np.random.default_rng(5)
    v = pd.Series(2.5e-4, index=factors.index)
    result = fit_checked(truth + rng.normal(0, 0.016, len(truth)), v, factors)
    failed = {c.level for c in result.checks if not c.holds and c.b == "template"}
    assert failed == {"m1", "m4"}
    assert {("model", "template", m) for m in ("m1", "m4")} <= set(result.unpooled)
    cot_m1 = result.mean[(factors["model"] == "m1") & (factors["template"] == "cot")]
    plain_m1 = result.mean[(factors["model"] == "m1") & (factors["template"] == "plain")]
    assert (cot_m1.to_numpy() - plain_m1.to_numpy()).mean() == pytest.approx(-0.12, abs=0.03)
    note = assumptions_note(list(result.checks), "code")
    assert "template effects of m1 as other models'" in note and "templates pooled ×2" in note
