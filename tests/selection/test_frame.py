import numpy as np
import pytest

from selection.frame import (
    REQUIRED_COLUMNS,
    TrainingDataError,
    config_table,
    fingerprint,
    validate_training_frame,
)
from selection.quality import quality_metric

from .conftest import synthetic_frame


def test_missing_columns_are_named():
    frame = synthetic_frame(cases=1).drop(columns=["quality", "suite"])
    with pytest.raises(TrainingDataError, match=r"missing column\(s\) suite, quality;"):
        validate_training_frame(frame)


def test_quality_outside_unit_interval_is_rejected():
    frame = synthetic_frame(cases=1)
    frame.loc[0, "quality"] = 37.0  # a BLEU score on the 0-100 scale
    with pytest.raises(TrainingDataError, match=r"divide 0–100 metrics"):
        validate_training_frame(frame)


def test_unknown_status_and_mixed_task_types_are_rejected():
    frame = synthetic_frame(cases=1)
    frame.loc[0, "status"] = "timeout"
    with pytest.raises(TrainingDataError, match="status"):
        validate_training_frame(frame)
    frame = synthetic_frame(cases=1)
    frame.loc[0, "task_type"] = "code"
    with pytest.raises(TrainingDataError, match="more than one task type"):
        validate_training_frame(frame)


def test_validated_frame_has_weights_and_float_settings():
    frame = validate_training_frame(synthetic_frame(cases=1))
    assert set(REQUIRED_COLUMNS) | {"weight"} <= set(frame.columns)
    assert (frame["weight"] == 1.0).all()
    assert frame["num_predict"].dtype == np.float64


def test_fingerprint_ignores_row_order_but_not_values():
    frame = validate_training_frame(synthetic_frame(cases=2))
    shuffled = frame.sample(frac=1.0, random_state=1)
    assert fingerprint(frame) == fingerprint(shuffled)
    changed = frame.copy()
    changed.loc[0, "latency_s"] += 0.001
    assert fingerprint(frame) != fingerprint(changed)
    # the same scores read from another metric (`rescore --first`) are other data: the
    # retrain stored nothing and the answer kept warning of mixed metrics
    assert fingerprint(frame) != fingerprint(frame.assign(quality_metric="contains"))


def test_config_table_has_one_row_per_config():
    frame = validate_training_frame(synthetic_frame(cases=2))
    table = config_table(frame)
    assert len(table) == frame["config_hash"].nunique()
    assert set(table["parameter_b"]) == {1.0, 8.0}


def test_quality_is_the_metric_the_user_chose_first():
    # the spec's (or the suite's) order decides, not a table per task type: on real QA
    # outputs exact_match was 0 for every config and the pick fell to latency alone
    assert quality_metric("qa", ["contains", "exact_match"]) == "contains"
    assert quality_metric("qa", ["exact_match", "contains"]) == "exact_match"
    assert quality_metric("qa", ["f1"]) == "f1"  # a user's scorer
    # descriptive and lower-is-better metrics cannot stand for quality
    assert quality_metric("qa", ["output_length", "echoes_prompt", "contains"]) == "contains"
    assert quality_metric("qa", ["latency_s", "ttft_s"]) is None
    assert quality_metric("code", ["pass@1", "bleu"]) == "pass@1"
    assert quality_metric("generation", []) is None


def test_a_quality_with_no_spread_is_named_not_used_to_decide():
    import pandas as pd

    from selection.recommender import no_quality_spread

    flat = pd.DataFrame(
        {"measured": [True, True, False], "measured_quality_mean": [0.0, 0.0, None]}
    )
    assert no_quality_spread(flat) == 0.0  # exact_match on real QA: 0 for every config
    varied = flat.assign(measured_quality_mean=[0.0, 0.25, None])
    assert no_quality_spread(varied) is None
    assert no_quality_spread(flat.iloc[[0, 2]]) is None  # one measured: nothing to say
