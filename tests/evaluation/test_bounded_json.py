"""JSON from outside decoded with its nesting bounded (newcomer F12: a suite line of 5000
nested lists ended `plan` with a RecursionError called "not a problem with your input")."""

from __future__ import annotations

import json
import math
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

    assert _json_object('{"a": ' + "[" * 5000 + "]" * 5000 + "}") == (None, "not a JSON object")
    assert _json_object('{"a": [[1]]}') == ({"a": [[1]]}, "")


def test_an_integer_longer_than_python_reads_is_invalid_json_at_the_number() -> None:
    """S1: json.loads raised a plain ValueError ("Exceeds the limit (4300 digits) for
    integer string conversion"), which the suite loader called evalflow's own failure."""
    limit = sys.get_int_max_str_digits()
    assert limit == 4300  # Python's default (PYTHONINTMAXSTRDIGITS unset)
    fine = '{"n": ' + "9" * limit + ', "f": 0.' + "9" * 10_000 + "}"
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

    assert _json_object('{"a": ' + "9" * 5000 + "}") == (None, "not a JSON object")


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1.5E+400", "9" * 400 + ".5"]
)
def test_a_number_that_is_not_finite_is_invalid_json_at_it(literal: str) -> None:
    """R1: json.loads took NaN/Infinity and read 1e400 as infinity; a suite case holding
    one passed plan and SQLite, then PostgreSQL's json type refused the run's insert
    ("invalid input syntax for type json"), naming no file or line."""
    text = '{"s": "NaN 1e999 Infinity", "ok": [1e308, -2.5e-400, 7], "n": ' + literal + "}"
    with pytest.raises(json.JSONDecodeError) as refused:
        bounded_json.loads(text)
    shown = literal if len(literal) <= 24 else f"a number of {len(literal)} characters"
    assert refused.value.msg.startswith(f"{shown} is not a finite number (JSON has none")
    assert refused.value.pos == text.index('"n": ') + 5  # not the text in the string
    assert bounded_json.loads(text, finite=False)["s"] == "NaN 1e999 Infinity"


def test_finite_numbers_and_text_that_names_infinity_load() -> None:
    text = '{"s": "NaN", "Infinity": 1e308, "t": -2.5e-400, "i": 12345678901234567890}'
    assert bounded_json.loads(text) == {
        "s": "NaN",
        "Infinity": 1e308,
        "t": -0.0,
        "i": 12345678901234567890,
    }


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_model_reply_holding_nan_is_no_json_object_for_format_json(literal: str) -> None:
    """RFC 8259 JSON has no NaN or Infinity, which json.loads takes: `{"x": NaN}` got
    credit as a JSON object. A number past a float's range is JSON (read as json reads
    it: nothing of the reply is stored)."""
    from evaluation.metrics._constraints import _json_object

    assert _json_object('{"s": "NaN", "x": ' + literal + "}") == (
        None,
        f"not a JSON object: {literal} is not JSON (RFC 8259 has no NaN or Infinity)",
    )
    assert _json_object('{"s": "NaN", "x": 1e400}') == ({"s": "NaN", "x": math.inf}, "")
