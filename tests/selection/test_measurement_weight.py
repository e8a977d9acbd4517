"""A measurement's weight against the model's prediction, and which configs may be
picked for real use: the two wrong answers a newcomer met on real runs (a config measured
0 of 8 estimated 62% and picked; a simulated config picked after `retrain
--include-simulated`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.spec._params import NAMES
from selection._candidates import candidate_table
from selection._scoring import scored_candidates
from selection.frame import validate_training_frame
from selection.own_means import moderated_se
from selection.recommender import recommend_from_model
from selection.training import train_selector

from .conftest import FAST, synthetic_frame

RUNS = [  # model, temperature, num_ctx, suite, cases right, cases
    ("tiny:1b", 0.0, None, "capitals", 0, 8),
    ("tiny:1b", 0.8, None, "capitals", 0, 8),
    ("mid:3b", 0.0, None, "capitals", 0, 8),
    ("big:8b", 0.0, None, "capitals", 8, 8),
    ("big:8b", 0.8, None, "capitals", 7, 8),
    ("big:8b", 0.0, 2048, "docs", 5, 6),
    ("tiny:1b", 0.0, 2048, "docs", 1, 6),
]


def few_real_runs(runs: list[tuple] = RUNS) -> pd.DataFrame:
    """The newcomer's shape: 0/1 scores on a few cases, and a setting (num_ctx) used only
    on one suite, so the multilevel model cannot tell that suite from the setting."""
    rows = []
    rng = np.random.default_rng(0)
    for model, temperature, ctx, suite, right, n in runs:
        speed = {"tiny:1b": 0.3, "mid:3b": 0.8, "big:8b": 2.0}.get(model, 1.0)
        params = GenerationParams(temperature=temperature, num_ctx=ctx)
        config = Config(model, params, PromptTemplate("plain", "{input}"))
        for case in range(n):
            rows.append(
                {
                    "experiment": f"exp-{suite}",
                    "config_hash": config.hash,
                    "model": model,
                    "family": model.split(":")[0],
                    "parameter_size": model.split(":")[1].upper(),
                    "quantization": "Q4_K_M",
                    "temperature": temperature,
                    "num_ctx": np.nan if ctx is None else ctx,
                    "template": "plain",
                    "template_text": "{input}",
                    "task_type": "qa",
                    "suite": suite,
                    "case_id": f"c{case}",
                    "input_chars": 100 + case,
                    "quality": float(case < right),
                    "latency_s": speed * rng.lognormal(0, 0.1),
                    "ttft_s": speed / 5,
                    "tokens_per_s": 30 / speed * rng.lognormal(0, 0.1),
                    "energy_j": np.nan,
                    "simulated": False,
                    "status": "ok",
                }
            )
    frame = pd.DataFrame(rows)
    for name in NAMES:
        if name not in frame:
            frame[name] = None
    return validate_training_frame(frame)


@pytest.fixture(scope="module")
def few_real():
    return train_selector(few_real_runs(), FAST).model


def test_a_fit_that_cannot_tell_suites_from_settings_leaves_the_measurements_the_decision(
    few_real,
):
    """The fit read every config at a standard error of ~2 (its suite effect rests on the
    flat prior), so measurements got 0.2–2% of the weight: configs measured 0 of 8
    were estimated 36%, one measurement was read at −1%."""
    table, _ = candidate_table(few_real, None, "qa")
    scored = scored_candidates(few_real, table, "qa", 100.0)
    measured = scored[scored["measured"]]
    assert measured["quality_measurement"].between(0, 1).all()
    assert (measured["quality_measurement_sd"] > 0).all()
    assert (measured["quality_weight"] > 0.5).all()
    nothing_right = measured[measured["measured_quality_mean"] == 0]
    assert len(nothing_right) == 3 and (nothing_right["quality"] < 0.2).all()
    answer = recommend_from_model(few_real, "qa")
    assert answer.choice.model == "big:8b" and answer.choice.evidence.quality_mean >= 0.8
    for option in (answer.choice, *answer.alternatives):
        assert 0 <= option.measured_quality_pooled <= 1
        assert option.measured_quality_se > 0
    (note,) = [n for n in answer.notes if n.startswith("the measurement (standard error")]
    shown = answer.choice.measured_quality_se
    assert note.startswith(f"the measurement (standard error {shown:.3f})")
    assert "standard error 0.000" not in answer.explain()


def test_a_mean_at_the_end_of_the_scale_is_not_a_certain_one():
    """Where every config scored all or nothing the pooled case variance is 0: 0 of 8
    and 8 of 8 keep the Agresti–Coull standard error."""
    found = pd.DataFrame(
        {"n_cases": [8, 8, 8], "quality_mean": [0.0, 1.0, 0.5], "quality_se": [0.0, 0.0, 0.0]}
    )
    se = moderated_se(found, pooled=0.0)
    adjusted = 2 / 12
    assert se[0] == pytest.approx(np.sqrt(adjusted * (1 - adjusted) / 12))
    assert se[1] == pytest.approx(se[0])
    assert se[2] == 0.0  # not at an end: the floor is for all-agreeing 0/1 cases only


def test_simulated_configs_are_not_picked_where_real_ones_were_measured():
    """After `retrain --include-simulated` a newcomer's `recommend qa` picked sim-large:8b,
    which no host serves, over real configs measured on the task type."""
    frame = validate_training_frame(synthetic_frame(cases=4))
    mixed = frame.assign(simulated=frame["model"] == "big:8b")  # big:8b is truly better
    model = train_selector(mixed, FAST).model
    answer = recommend_from_model(model, "qa")
    assert answer.ok and answer.choice.model == "tiny:1b"
    assert "SIMULATED" not in answer.message
    (note,) = [n for n in answer.notes if "SIMULATED configuration(s) left out" in n]
    assert note.startswith("8 SIMULATED configuration(s) left out (big:8b")
    # recheck NEW-5: "Name them in candidates" named no CLI option, in a garbled sentence
    assert "no host serves the simulated backend's models;" in note
    assert note.endswith('selection.recommend("qa", candidates=[their labels or hashes])')
    assert all(o.model == "tiny:1b" for o in answer.alternatives)
    # named, a simulated config is ranked, and a simulated pick says so where it is read
    named = [h for h in model.configs.index if model.configs.loc[h, "model"] == "big:8b"]
    chosen = recommend_from_model(model, "qa", candidates=named)
    assert chosen.message == f"use {chosen.choice.label} (SIMULATED)"
    # with no real run of the task type (the simulated demo) nothing is left out
    demo = train_selector(frame, FAST).model
    answer = recommend_from_model(demo, "qa")
    assert answer.choice.model == "big:8b" and answer.message.endswith(" (SIMULATED)")
    assert not any("left out" in n for n in answer.notes)


def test_simulated_configs_do_not_speak_for_an_answer_on_real_ones():
    """After `retrain --include-simulated` a newcomer's real qa spec put the demo's
    exact_match first (12 simulated configs outvoted 6 real ones on contains), its note
    counted them as mixing metrics though they were left out, its "against it" line
    weighed the real pick against the simulated configs' num_predict, and a task type
    with no data was told to start with a simulated model."""
    frame = validate_training_frame(synthetic_frame(cases=2))
    # simulated: every big:8b config at num_predict 256; real: tiny:1b plain at 64
    tiny = (frame["model"] == "tiny:1b") & (frame["template"] == "plain")
    keep = ((frame["model"] == "big:8b") & (frame["num_predict"] == 256)) | (
        tiny & (frame["num_predict"] == 64)
    )
    fake = frame["model"] == "big:8b"
    mixed = frame[keep].assign(
        simulated=fake[keep], quality_metric=np.where(fake[keep], "exact_match", "contains")
    )
    model = train_selector(mixed, FAST).model
    answer = recommend_from_model(model, "qa")
    assert answer.choice.model == "tiny:1b"
    assert answer.quality_metrics == {"contains": 2}  # what --write-spec puts first
    assert "quality is contains, the first metric of the qa runs" in answer.notes
    assert not any("mixes metrics" in n for n in answer.notes)
    assert not {d.baseline for d in answer.drivers} & {"big:8b", "256"}  # simulated settings
    # named, the simulated configs are counted too
    named = recommend_from_model(model, "qa", candidates=list(model.configs.index))
    assert named.quality_metrics == {"exact_match": 4, "contains": 2}
    # no data on the task type: start with the real configs that lead elsewhere
    no_data = recommend_from_model(model, "code")
    assert no_data.status == "no_data" and "tiny:1b" in no_data.suggestions[1]
    assert "big:8b" not in no_data.suggestions[1]


def test_a_pick_never_run_on_the_task_type_is_all_prediction():
    """A newcomer's pick never run on qa was said to have "the 0% of its quality estimate
    that is prediction" from a selector trained on SIMULATED generations: it is all
    prediction (its measurement weight is the multilevel fit's reading, a prediction)."""
    frame = validate_training_frame(synthetic_frame(cases=2))
    config = frame.loc[frame["model"] == "tiny:1b", "config_hash"].iloc[0]
    absent = (frame["config_hash"] == config) & (frame["task_type"] == "qa")
    mixed = frame[~absent].assign(simulated=frame["model"] == "big:8b")
    model = train_selector(mixed, FAST).model
    answer = recommend_from_model(model, "qa", candidates=[config])
    assert answer.choice.basis == "predicted"
    (note,) = [n for n in answer.notes if "SIMULATED generations" in n]
    assert note.startswith("its figures, all prediction (never run on qa), come from a selector")


def test_a_configs_estimate_does_not_depend_on_the_other_candidates_named():
    """Newcomer ncsel-4: named alone, a config's prior was checked against its own
    measurement only, so its measurement weighed 100% of the estimate (0.836), against
    65% (0.691) in the plain answer; the check is the task type's measured configs'."""
    model = train_selector(validate_training_frame(synthetic_frame()), FAST).model
    plain = recommend_from_model(model, "qa")
    for shown in (plain.choice, *plain.alternatives[:2]):
        alone = recommend_from_model(model, "qa", candidates=[shown.config_hash]).choice
        assert alone.config_hash == shown.config_hash
        assert alone.measurement_weight == pytest.approx(shown.measurement_weight)
        assert alone.quality.value == pytest.approx(shown.quality.value)
