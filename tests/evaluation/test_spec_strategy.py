"""The spec's strategy fields: strategy, delta, budget, max_latency_s."""

from pathlib import Path

import pytest

from evaluation.errors import SpecError
from evaluation.spec import Strategy, parse_spec


@pytest.fixture
def data(tmp_path: Path) -> dict:
    suite = tmp_path / "tiny.jsonl"
    suite.write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    return {"name": "t", "suite": str(suite), "models": ["m1"], "metrics": ["contains"]}


def test_default_is_the_full_grid(data):
    assert parse_spec(data).strategy == Strategy("full")


def test_race_with_delta_and_budget(data):
    spec = parse_spec({**data, "strategy": "race", "delta": 0.02, "budget": 500})
    assert spec.strategy == Strategy("race", 0.02, 500)
    assert parse_spec({**data, "strategy": "race"}).strategy == Strategy("race", 0.01, None)


def test_race_limits_name_the_measure_they_bound(data):
    spec = parse_spec({**data, "strategy": "race", "max_latency_s": 2})
    assert spec.strategy.limits == {"latency_s": 2.0}
    assert parse_spec({**data, "strategy": "race"}).strategy.limits == {}


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"strategy": "halving"}, "strategy", "expected one of full, race, got 'halving'"),
        ({"delta": 0.1}, "delta", "applies only to strategy: race"),
        ({"strategy": "full", "budget": 10}, "budget", "applies only to strategy: race"),
        ({"strategy": "race", "delta": -0.1}, "delta", "must be in [0, 1)"),
        ({"strategy": "race", "delta": "small"}, "delta", "expected a number"),
        ({"strategy": "race", "budget": 0}, "budget", "budget must be >= 1 and <= 1000000000"),
        ({"strategy": "race", "budget": 2.5}, "budget", "expected an integer"),
        ({"max_latency_s": 2.0}, "max_latency_s", "applies only to strategy: race"),
        ({"strategy": "race", "max_latency_s": 0}, "max_latency_s", "must be > 0"),
        ({"strategy": "race", "max_latency_s": "fast"}, "max_latency_s", "expected a number"),
    ],
)
def test_bad_strategy_fields_are_refused_naming_the_field(data, extra, field, fragment):
    with pytest.raises(SpecError) as info:
        parse_spec({**data, **extra})
    assert info.value.field == field
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
