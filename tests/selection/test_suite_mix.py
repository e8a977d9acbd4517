"""Configs run on different suites are compared at one suite mix (selection/suite_mix.py).

A newcomer's world, to the case: two models at temperature 0 and 0.8 on an easy suite (10
cases) and a harder one (36), then both at 0.4 on the easy suite alone. On the easy suite
smollm at 0.4 scored what smollm at 0 did (9 of 10); the selector picked it at 83.2% over
the twin's 58.3% (its mean over both suites), said they "were measured on the same
cases", and named nothing to measure next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.spec import Config, GenerationParams, PromptTemplate
from selection._candidates import candidate_table
from selection.recommender import recommend_from_model, scored_candidates, to_measure
from selection.suite_mix import suite_mix
from selection.training import train_selector

from .conftest import FAST
from .test_measurement_weight import few_real_runs

RUNS = [  # model, temperature, num_ctx, suite, cases right, cases
    ("smol:135m", 0.0, None, "easy", 9, 10),
    ("smol:135m", 0.0, None, "hard", 18, 36),
    ("smol:135m", 0.8, None, "easy", 7, 10),
    ("smol:135m", 0.8, None, "hard", 15, 36),
    ("gem:270m", 0.0, None, "easy", 5, 10),
    ("gem:270m", 0.0, None, "hard", 21, 36),
    ("gem:270m", 0.8, None, "easy", 2, 10),
    ("gem:270m", 0.8, None, "hard", 10, 36),
    ("smol:135m", 0.4, None, "easy", 9, 10),
    ("gem:270m", 0.4, None, "easy", 3, 10),
]


def _config(model: str, temperature: float) -> Config:
    return Config(
        f"{model}:{ {'smol': '135m', 'gem': '270m'}[model] }",
        GenerationParams(temperature=temperature),
        PromptTemplate("plain", "{input}"),
    )


@pytest.fixture(scope="module")
def model():
    return train_selector(few_real_runs(RUNS), FAST).model


def test_a_config_run_on_the_easy_suite_alone_is_read_at_the_task_types_suite_mix(model):
    found = suite_mix(model, "qa")
    thin, twin, other = (_config("smol", t).hash for t in (0.4, 0.0, 0.8))
    assert found.loc[thin, "missing"] == ("hard",) and found.loc[thin, "read_from"] == "smol:135m"
    mix = found.loc[thin, "mix"]
    assert mix["easy"] == pytest.approx((4 * 10 / 46 + 2) / 6)
    # its hard-suite mean: its easy one plus its model's other configs' hard − easy
    difference = np.mean([18 / 36 - 0.9, 15 / 36 - 0.7])
    expected = mix["easy"] * 0.9 + mix["hard"] * (0.9 + difference)
    assert found.loc[thin, "mean"] == pytest.approx(expected)
    assert found.loc[twin, "mean"] == pytest.approx(mix["easy"] * 0.9 + mix["hard"] * 0.5)
    assert found.loc[twin, "missing"] == () and found.loc[other, "missing"] == ()
    # level on the easy suite, level at the mix (it was 0.9 against 0.587)
    assert abs(found.loc[thin, "mean"] - found.loc[twin, "mean"]) < 0.05


def test_the_answer_compares_them_on_the_same_footing_and_says_what_to_measure(model):
    thin, twin = _config("smol", 0.4), _config("smol", 0.0)
    table, _ = candidate_table(model, None, "qa")
    scored = scored_candidates(model, table, "qa", model.typical_input_chars["qa"])
    # was 83.2% against 58.3%: the easy suite read as the temperature's effect
    assert abs(scored.loc[thin.hash, "quality"] - scored.loc[twin.hash, "quality"]) < 0.05
    answer = recommend_from_model(model, "qa")
    assert not any("they were measured on the same cases" in n for n in answer.notes)
    shared = [n for n in answer.notes if "cancels between candidates measured on" in n]
    assert shared and f"{thin.label} not on hard" in shared[0]
    measure = [s for s in answer.suggestions if thin.hash in s]
    assert measure and f"{thin.label} (hash {thin.hash}) on hard: " in measure[0]
    higher = [n for n in answer.notes if n.startswith(f"{thin.label} was measured higher")]
    if higher:  # the by-hand choice's mean is over the easy suite alone: the pick's there
        assert (
            "over other suites than the pick's: on those 10 cases the pick scored 90.0%"
            in (higher[0])
        )


def test_a_pick_not_run_on_a_suite_its_rivals_were_is_to_be_measured_there():
    table = pd.DataFrame(
        {
            "model": "m",
            "template": "plain",
            "template_text": "{input}",
            "quality": [0.70, 0.66],
            "quality_low": [0.55, 0.60],
            "quality_high": [0.85, 0.72],
            "measured_n_cases": [10, 46],
        },
        index=["pick", "twin"],
    )
    named = to_measure(table, "pick", {"pick": ("hard",)})
    assert named[0].startswith("measure the pick, m tpl=plain (hash pick), on hard: it was not run")
    assert to_measure(table, "pick") == ()
