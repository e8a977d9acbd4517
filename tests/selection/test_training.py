import dataclasses

import numpy as np
import pandas as pd
import pytest

from selection.frame import NotEnoughTrainingData, validate_training_frame
from selection.training import grouped_folds, train_selector

from .conftest import FAST, SUITES, config_named, synthetic_frame, true_latency, true_quality


def test_grouped_folds_never_split_a_suite():
    rng = np.random.default_rng(0)
    suites = np.array([f"s{i}" for i in rng.integers(0, 7, 300)])
    tasks = np.array(["qa" if int(s[1:]) % 2 else "code" for s in suites])
    folds = grouped_folds(suites, tasks, 5)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(300))
    for train, test in folds:
        assert not set(suites[train]) & set(suites[test])


def test_cross_validation_holds_out_suites(trained):
    assert trained.grouping == "suite"
    assert trained.metrics["quality"]["n_groups"] == len(SUITES)
    assert trained.rows["oof_quality"].notna().all()


def test_errors_are_reported_per_target(trained):
    for target in ("quality", "latency_p50", "latency_p95", "tokens_per_s", "energy_j"):
        metrics = trained.metrics[target]
        assert metrics["mae"] >= 0 and 0 <= metrics["coverage"] <= 1
        assert metrics["model_rmse"] <= metrics["rmse"]
    assert trained.metrics["latency_p95"]["relative_error"] < 0.25
    assert trained.metrics["quality"]["mae"] < 0.1
    assert set(trained.importances) == {"quality", "latency_p95"}
    assert max(trained.importances["latency_p95"], key=trained.importances["latency_p95"].get) in {
        "model",
        "family",
        "parameter_b",
        "task_type*model",
    }


def test_training_recovers_the_known_best_config(trained):
    model = trained.model
    for task in ("qa", "summarization"):
        predicted = model.predict(model.configs, task)
        best = predicted["quality"].idxmax()
        row = model.configs.loc[best]
        truth = true_quality(row["model"], row["template"], row["temperature"], task)
        assert truth == max(
            true_quality(m, t, temp, task)
            for m in ("tiny:1b", "big:8b")
            for t in ("plain", "careful")
            for temp in (0.0, 0.8)
        )
        assert predicted.loc[best, "quality"] == pytest.approx(truth, abs=0.05)
    latency = model.predict(model.configs, "qa")["latency_p95"]
    slow = config_named("big:8b", "plain", 0.0, 256).hash
    assert latency[slow] == pytest.approx(true_latency("big:8b", 256) * 1.18, rel=0.15)


def test_intervals_contain_the_prediction(trained):
    predicted = trained.model.predict(trained.model.configs, "qa")
    for target in ("quality", "latency_p95"):
        assert (predicted[f"{target}_low"] <= predicted[target]).all()
        assert (predicted[target] <= predicted[f"{target}_high"]).all()


def test_one_suite_holds_out_configs_and_says_so():
    frame = validate_training_frame(synthetic_frame(cases=3, suites={"qa-a": "qa"}))
    result = train_selector(frame, FAST)
    assert result.grouping == "config"
    assert any("one suite" in note for note in result.notes)


def test_missing_energy_is_not_fitted():
    frame = validate_training_frame(synthetic_frame(cases=2, energy=False))
    result = train_selector(frame, FAST)
    assert "energy_j" not in result.model.targets
    assert result.metrics["energy_j"]["note"] == "not recorded"


def test_each_target_fitted_is_announced_with_how_far(monkeypatch):
    """`evalflow retrain` printed nothing for 38-77 s: training says what it fits and
    how far it is (a target not recorded is not counted)."""
    from selection import steps

    said: list[str] = []
    monkeypatch.setattr(steps, "LISTENERS", [said.append])
    frame = validate_training_frame(synthetic_frame(cases=2, energy=False))
    result = train_selector(frame, FAST)
    fitted = [step for step in said if step.startswith("fitting ")]
    rows = f"{result.n_rows} (config, suite) rows"
    assert fitted == [
        f"fitting {name} (target {k} of 4, {rows}, cross-validated)"
        for k, name in enumerate(("quality", "latency_p50", "latency_p95", "tokens_per_s"), 1)
    ]
    assert said[-1].startswith("measuring what each feature is worth")


def test_too_little_data_is_a_clear_error():
    frame = validate_training_frame(synthetic_frame(cases=1).head(2))
    with pytest.raises(NotEnoughTrainingData, match="at least 3") as caught:
        train_selector(frame, FAST)
    # Issue 27: it said what was missing but not what to run next
    assert "run more configs or suites first: e.g. `evalflow run SPEC`" in str(caught.value)


def test_kept_predictions_match_fresh_ones_per_task_and_configs(trained):
    model = dataclasses.replace(trained.model)  # its own store of predictions
    first = model.predict(model.configs, "qa")
    first["quality"] = -1.0  # changing an answer does not change the next one
    again = model.predict(model.configs, "qa")
    pd.testing.assert_frame_equal(
        again, model.predict_rows(model.context_rows(model.configs, "qa"))
    )
    some = model.predict(model.configs.iloc[:3], "qa")
    pd.testing.assert_frame_equal(some, again.iloc[:3])
    other = model.predict(model.configs, "summarization")
    assert not other["quality"].equals(again["quality"])
