import math

import numpy as np
import pandas as pd
import pytest

from selection.features import FEATURES, FeatureEncoder, add_parameter_b, parse_parameter_size


@pytest.mark.parametrize(
    ("text", "billions"),
    [
        ("8.0B", 8.0),
        ("70B", 70.0),
        ("137M", 0.137),
        ("1.5b", 1.5),
        (" 3B ", 3.0),
        ("8x7B", 56.0),
        ("1T", 1000.0),
    ],
)
def test_parse_parameter_size(text, billions):
    assert parse_parameter_size(text) == pytest.approx(billions)


@pytest.mark.parametrize("text", ["", None, "unknown", "8.0", "B"])
def test_unreadable_parameter_size_is_nan(text):
    assert math.isnan(parse_parameter_size(text))


def test_add_parameter_b_parses_the_column():
    frame = pd.DataFrame({"parameter_size": ["8.0B", "", "137M"]})
    parsed = add_parameter_b(frame)["parameter_b"].tolist()
    assert parsed[0] == 8.0 and math.isnan(parsed[1]) and parsed[2] == pytest.approx(0.137)


def _rows(**overrides):
    base = {
        "model": ["a:1b", "b:8b"],
        "family": ["a", "b"],
        "quantization": ["Q4", "Q4"],
        "template": ["plain", "cot"],
        "task_type": ["qa", "code"],
        "parameter_b": [1.0, 8.0],
        "temperature": [0.0, 0.7],
        "top_p": [np.nan, 0.9],
        "top_k": [np.nan, np.nan],
        "num_predict": [64, 256],
        "num_ctx": [np.nan, 4096],
        "input_chars": [100, 200],
    }
    return pd.DataFrame(base | overrides)


def test_encoder_drops_numeric_features_never_set_and_keeps_interactions():
    encoder = FeatureEncoder.fit(_rows())
    assert "top_k" not in encoder.columns
    assert "task_type*template" in encoder.columns
    assert set(encoder.columns) <= set(FEATURES)
    x = encoder.transform(_rows())
    assert x.shape == (2, len(encoder.columns))
    assert encoder.categorical_mask.sum() == len(encoder.levels)


def test_unseen_category_becomes_missing_and_server_default_stays_nan():
    encoder = FeatureEncoder.fit(_rows())
    x = encoder.transform(_rows(model=["new:3b", "b:8b"]))
    model_column = encoder.columns.index("model")
    assert np.isnan(x[0, model_column]) and x[1, model_column] == 1.0
    assert np.isnan(x[0, encoder.columns.index("top_p")])
