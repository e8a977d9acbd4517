"""The pipeline part of a config: which pipeline runs a case and with which parameters.

Kept apart from the pipelines themselves so ``evaluation.spec`` can hold it in a
``Config`` (and hash it) without importing model-calling code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SINGLE = "single"


@dataclass(frozen=True)
class PipelineSetting:
    """A pipeline name (a built-in, or ``package.module:function``) and its parameter
    values as canonical JSON (see ``canonical``), so the setting is hashable and hashes
    the same however the spec wrote it, except where order is meaning (``sections``)."""

    name: str
    params_json: str = "{}"

    @classmethod
    def of(cls, name: str, params: Mapping[str, Any]) -> PipelineSetting:
        return cls(name, canonical(params))

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    def payload(self) -> dict[str, Any]:
        """What goes into the config hash. The config hash sorts every mapping's keys, so
        an order-significant mapping written out of alphabetical order adds its order
        (``order``); one in alphabetical order adds nothing, so every config stored
        before order was kept (its mapping was stored sorted) keeps its hash."""
        params = self.params
        payload: dict[str, Any] = {"name": self.name, "params": params}
        order = {
            key: list(params[key])
            for key in ORDER_SIGNIFICANT
            if isinstance(params.get(key), dict) and list(params[key]) != sorted(params[key])
        }
        if order:
            payload["order"] = order
        return payload

    def label_parts(self) -> list[str]:
        """The name, its own numbers and switches and the map_reduce mode (chunk_size &
        co. are labelled as generation parameters); prompts and paths are left out."""
        parts = [self.name]
        for key, value in self.params.items():
            if isinstance(value, bool):
                parts.append(f"{key}={'yes' if value else 'no'}")
            elif isinstance(value, float):
                parts.append(f"{key}={value:g}")
            elif isinstance(value, int) or key == "mode":
                parts.append(f"{key}={value}")
        return parts


# Parameters whose mapping order is meaning: ``sections`` run (sequentially, each seeing
# the ones before it) and are assembled in the order written.
ORDER_SIGNIFICANT = frozenset({"sections"})


def canonical(params: Mapping[str, Any]) -> str:
    """Parameters as JSON with sorted keys, but for an order-significant mapping's
    (``ORDER_SIGNIFICANT``), which keeps the order written."""
    fields = [
        json.dumps(key)
        + ":"
        + json.dumps(params[key], sort_keys=key not in ORDER_SIGNIFICANT, separators=(",", ":"))
        for key in sorted(params)
    ]
    return "{" + ",".join(fields) + "}"


@dataclass(frozen=True)
class PipelineSpec:
    """The spec's ``pipeline:`` block: the pipeline's name, the parameter values fixed
    there, and the declared parameters the grid varies (name, values), in declared
    order. ``settings`` expands them."""

    name: str
    fixed: tuple[tuple[str, Any], ...] = ()
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def settings(self) -> list[PipelineSetting]:
        """One setting per combination of the grid's values, in grid order."""
        combos: list[dict[str, Any]] = [dict(self.fixed)]
        for name, values in self.grid:
            combos = [combo | {name: value} for combo in combos for value in values]
        return [PipelineSetting.of(self.name, combo) for combo in combos]

    @property
    def count(self) -> int:
        total = 1
        for _name, values in self.grid:
            total *= len(values)
        return total
