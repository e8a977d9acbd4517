"""The parameter grid of a sweep spec: reading each parameter's values (which ones it
accepts is ``evaluation.spec._params``' table), and how a ``{min, max, step}`` range
becomes a list of values.

Float ranges are computed in decimal arithmetic from the numbers as written, so
``{min: 0.0, max: 1.0, step: 0.1}`` gives exactly 0.0, 0.1, ..., 1.0 (eleven values, each
equal to the literal a user would type) with no accumulated float error; ``max`` is
included whenever it lands on the grid.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from evaluation.spec._fields import FieldReader, _type_name, child, item, shown
from evaluation.spec._params import BY_NAME, Parameter
from evaluation.spec._params import GRID_ORDER as GRID_ORDER

Value = int | float

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
    param = BY_NAME[name]
    if param.kind is tuple:
        return _list_values(reader, param, raw, field)
    if isinstance(raw, dict):
        reader.check(
            param.numeric and param.kind is not bool,
            field,
            f"{name} takes a list of values, not a range (it is not a number)",
        )
        return tuple(_range_values(reader, param, raw, field, max_count))
    if not isinstance(raw, list):
        return (_value(reader, param, raw, field),)
    reader.sequence(raw, field)
    values = [_value(reader, param, v, item(field, i)) for i, v in enumerate(raw)]
    reader.unique(values, field)
    return tuple(values)


def _value(reader: FieldReader, param: Parameter, raw: Any, field: str) -> Any:
    read = {int: reader.integer, float: reader.number, str: reader.text, bool: reader.boolean}
    value = read[param.kind](raw, field)
    why = f"; {param.why}" if param.why else ""
    reader.check(param.accepts(value), field, f"{param.name} {param.rule}, got {shown(value)}{why}")
    return value


def _list_values(
    reader: FieldReader, param: Parameter, raw: Any, field: str
) -> tuple[tuple[str, ...] | None, ...]:
    """A list-valued parameter (``stop``): one list of strings, the one value of every
    config, or a list of such lists, one value each; ``[]`` is "none" (unset)."""
    if isinstance(raw, list) and any(isinstance(v, list) for v in raw):
        values = [_strings(reader, param, v, item(field, i)) for i, v in enumerate(raw)]
        reader.unique(values, field)
        return tuple(values)
    return (_strings(reader, param, raw, field),)


def _strings(reader: FieldReader, param: Parameter, raw: Any, field: str) -> tuple[str, ...] | None:
    why = f"; {param.why}" if param.why else ""
    if not isinstance(raw, list):
        raise reader.error(field, f"{param.name} {param.rule}, got {_type_name(raw)}{why}")
    for i, value in enumerate(raw):
        got = repr(value) if value == "" else _type_name(value)
        reader.check(
            param.accepts([value]), item(field, i), f"{param.name} {param.rule}, got {got}{why}"
        )
    return tuple(raw) or None


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
    # Compared before dividing: a step like 1e-300 gives a count past decimal precision.
    reader.check(
        _dec(high) - _dec(low) < _dec(step) * max_count,
        step_field,
        f"step {step!r} gives more than limits.max_configs ({max_count}) values from "
        f"{low!r} to {high!r}; use a larger step or raise limits.max_configs",
    )
    return inclusive_range(low, high, step, param.kind)
