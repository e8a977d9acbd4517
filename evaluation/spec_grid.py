"""The parameter grid of a sweep spec: which generation settings can vary, which values
each accepts, and how a ``{min, max, step}`` range becomes a list of values.

Float ranges are computed in decimal arithmetic from the numbers as written, so
``{min: 0.0, max: 1.0, step: 0.1}`` gives exactly 0.0, 0.1, ..., 1.0 (eleven values, each
equal to the literal a user would type) with no accumulated float error; ``max`` is
included whenever it lands on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from evaluation.spec_fields import FieldReader, child, item

Value = int | float


@dataclass(frozen=True)
class Parameter:
    """One grid parameter: its type and the interval of values it accepts."""

    name: str
    kind: type[int] | type[float]
    minimum: Value
    rule: str  # the rule as an error message states it
    exclusive_minimum: bool = False
    maximum: Value | None = None
    why: str = ""  # the reason for the rule, when it is not obvious

    def accepts(self, value: Value) -> bool:
        above = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        return above and (self.maximum is None or value <= self.maximum)


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("temperature", float, 0.0, "must be >= 0"),
        Parameter("top_p", float, 0.0, "must be in (0, 1]", exclusive_minimum=True, maximum=1.0),
        Parameter("top_k", int, 1, "must be >= 1"),
        Parameter(
            "num_predict",
            int,
            1,
            "must be >= 1",
            why="0 generates nothing, and -1 (unbounded generation) is refused because a "
            "model that loops would never stop",
        ),
        Parameter("num_ctx", int, 1, "must be >= 1"),
        Parameter("seed", int, 0, "must be >= 0", why="leave seed out to let the server pick one"),
    )
}

# Expansion order after the model: num_ctx first, because changing it makes Ollama reload
# the model, so configs sharing a num_ctx should run together.
GRID_ORDER = ("num_ctx", "temperature", "top_p", "top_k", "num_predict", "seed")

RANGE_KEYS = ("min", "max", "step")


def range_count(low: Value, high: Value, step: Value) -> int:
    """How many values ``low, low + step, ...`` stay <= ``high`` (step > 0, low <= high)."""
    return int((_dec(high) - _dec(low)) // _dec(step)) + 1


def inclusive_range(low: Value, high: Value, step: Value, kind: type = float) -> list[Value]:
    """``low, low + step, ...`` up to and including ``high`` when it lands on the grid."""
    start, increment = _dec(low), _dec(step)
    values = (start + i * increment for i in range(range_count(low, high, step)))
    return [int(v) if kind is int else float(v) for v in values]


def _dec(value: Value) -> Decimal:
    # repr is the shortest text that round-trips, i.e. the number as the user wrote it.
    return Decimal(repr(value))


def grid_values(
    reader: FieldReader, name: str, raw: Any, field: str, *, max_count: int
) -> tuple[Value, ...]:
    """The values of grid parameter ``name`` from a list, a range mapping or one scalar."""
    param = PARAMETERS[name]
    if isinstance(raw, dict):
        return tuple(_range_values(reader, param, raw, field, max_count))
    if not isinstance(raw, list):
        return (_value(reader, param, raw, field),)
    reader.sequence(raw, field)
    values = [_value(reader, param, v, item(field, i)) for i, v in enumerate(raw)]
    reader.unique(values, field)
    return tuple(values)


def _value(reader: FieldReader, param: Parameter, raw: Any, field: str) -> Value:
    value = reader.integer(raw, field) if param.kind is int else reader.number(raw, field)
    why = f"; {param.why}" if param.why else ""
    reader.check(param.accepts(value), field, f"{param.name} {param.rule}, got {value!r}{why}")
    return value


def _range_values(
    reader: FieldReader, param: Parameter, raw: dict[str, Any], field: str, max_count: int
) -> list[Value]:
    reader.mapping(raw, field, allowed=RANGE_KEYS, required=RANGE_KEYS)
    low = _value(reader, param, raw["min"], child(field, "min"))
    high = _value(reader, param, raw["max"], child(field, "max"))
    step_field = child(field, "step")
    step = (reader.integer if param.kind is int else reader.number)(raw["step"], step_field)
    reader.check(step > 0, step_field, f"step must be > 0, got {step!r}")
    reader.check(low <= high, child(field, "min"), f"min ({low!r}) is greater than max ({high!r})")
    count = range_count(low, high, step)
    reader.check(
        count <= max_count,
        field,
        f"the range gives {count} values, more than limits.max_configs ({max_count}); "
        "use a larger step or raise limits.max_configs",
    )
    return inclusive_range(low, high, step, param.kind)
