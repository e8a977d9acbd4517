"""JSON from outside decoded with its nesting bounded (newcomer F12: a suite line of 5000
nested lists ended `plan` with a RecursionError called "not a problem with your input")."""

from __future__ import annotations

import json
import sys

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


def test_an_integer_longer_than_python_reads_is_invalid_json_at_the_number() -> None:
    """S1: json.loads raised a plain ValueError ("Exceeds the limit (4300 digits) for
    integer string conversion"), which the suite loader called evalflow's own failure."""
    limit = sys.get_int_max_str_digits()
    assert limit == 4300  # Python's default (PYTHONINTMAXSTRDIGITS unset)
    fine = '{"n": ' + "9" * limit + ', "f": ' + "9" * 10_000 + ".5}"
    assert bounded_json.loads(fine)["n"] == int("9" * limit)
    text = '{"s": "' + "9" * 5000 + '", "m": -' + "9" * (limit + 1) + "}"
    with pytest.raises(json.JSONDecodeError) as refused:
        bounded_json.loads(text)
    assert refused.value.msg == (
        "an integer of 4301 digits, more than the 4300 Python reads (quote it to keep it as text)"
    )
    assert refused.value.pos == text.index("-")  # digits in the string before are text


def test_a_hooks_own_value_error_is_not_taken_for_a_long_integer() -> None:
    def refuse(pairs: list) -> dict:
        raise ValueError("the hook's own")

    with pytest.raises(ValueError, match="the hook's own") as raised:
        bounded_json.loads('{"a": 1}', object_pairs_hook=refuse)
    assert type(raised.value) is ValueError


def test_a_model_reply_holding_a_long_integer_is_no_json_object() -> None:
    from evaluation.metrics._constraints import _json_object

    assert _json_object('{"a": ' + "9" * 5000 + "}") is None
