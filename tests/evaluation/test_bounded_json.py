"""JSON from outside decoded with its nesting bounded (newcomer F12: a suite line of 5000
nested lists ended `plan` with a RecursionError called "not a problem with your input")."""

from __future__ import annotations

import json

import pytest

from evaluation import bounded_json, safe_yaml


def test_nesting_past_the_yaml_bound_is_invalid_json_at_its_bracket() -> None:
    assert bounded_json.MAX_DEPTH == safe_yaml.MAX_DEPTH
    deep = 64
    assert bounded_json.loads("[" * deep + "]" * deep) == json.loads("[" * deep + "]" * deep)
    text = '{"a": "[[[[", "b": ' + "[" * 70 + "]" * 70 + "}"
    with pytest.raises(json.JSONDecodeError, match="nested deeper than 64 levels") as refused:
        bounded_json.loads(text)
    assert refused.value.pos == text.index("[" * 70) + 63  # level 65: the object is level 1
    # brackets in strings are text; many side by side are not nesting
    assert bounded_json.loads(json.dumps({"t": "[" * 500, "l": [[1]] * 500}))["t"] == "[" * 500
    with pytest.raises(json.JSONDecodeError, match="nested deeper"):
        bounded_json.loads("[" * 5000 + "]" * 5000)  # json.loads: RecursionError


def test_a_model_reply_nested_too_deep_is_no_json_object() -> None:
    from evaluation.metrics._constraints import _json_object

    assert _json_object('{"a": ' + "[" * 5000 + "]" * 5000 + "}") is None
    assert _json_object('{"a": [[1]]}') == {"a": [[1]]}
