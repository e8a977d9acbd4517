"""The pipeline contract: what a pipeline is given and what it returns.

A pipeline is an async function ``(case, params, llm) -> str | PipelineOutput``:

- ``case``: the suite's ``Case`` (``case.input_text``, ``case.metadata``, ...);
- ``params``: its parameter values for this config (a plain dict);
- ``llm``: the ``Handles`` of this case, whose ``generate`` and ``embed`` go through
  evalflow's backends: host slots, retries, stage recording, truncation checks.

It returns the case's output (what is scored), optionally with metadata stored beside
the generation. An exception fails that case with its message; the sweep goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from evaluation.pipelines._parameters import PARAMETERS, PipelineParameter
from evaluation.pipelines._retrieval import Hit
from evaluation.suites import Case


@dataclass(frozen=True)
class PipelineOutput:
    """A case's output and what to record with it (e.g. ``retrieved_chunk_ids``)."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Handles(Protocol):
    """The model calls a pipeline may make. ``stage`` names the call in the stage
    records ("map", "reduce", "section:risks"); ``model`` defaults to the config's;
    ``retrieved``: the hits (``retrieve``) the prompt's context came from, kept in the
    generation's transcript with their similarity."""

    async def generate(
        self,
        prompt: str,
        *,
        stage: str,
        model: str | None = None,
        retrieved: Sequence[Hit] = (),
    ) -> str: ...

    async def embed(
        self, texts: Sequence[str], *, model: str, stage: str = "embed"
    ) -> list[list[float]]: ...

    async def embed_once(
        self, key: tuple[Any, ...], texts: Sequence[str], *, model: str, stage: str = "embed"
    ) -> list[list[float]]: ...


PipelineFunction = Callable[[Case, dict[str, Any], Handles], Awaitable["str | PipelineOutput"]]


@dataclass(frozen=True)
class Pipeline:
    """A named pipeline function and the parameters it declares."""

    name: str
    function: PipelineFunction
    parameters: Mapping[str, PipelineParameter]


def pipeline(
    parameters: Mapping[str, type | PipelineParameter] | None = None,
) -> Callable[[PipelineFunction], PipelineFunction]:
    """Declare a user pipeline's parameters: ``@pipeline(parameters={"passes": int})``.

    A type declares a parameter with no rule (int, float, bool, str); a name evalflow
    knows (``chunk_size``, ``retrieve_k``, ...) given as a type takes evalflow's rule
    and default. An undeclared parameter in a spec is refused."""

    def declare(function: PipelineFunction) -> PipelineFunction:
        function.__pipeline_parameters__ = declared(parameters or {})  # type: ignore[attr-defined]
        return function

    return declare


def declared(raw: Mapping[str, type | PipelineParameter]) -> dict[str, PipelineParameter]:
    params: dict[str, PipelineParameter] = {}
    for name, value in raw.items():
        if isinstance(value, PipelineParameter):
            params[name] = value
        elif name in PARAMETERS and PARAMETERS[name].kind is value:
            params[name] = PARAMETERS[name]
        elif value in (int, float, bool, str):
            params[name] = PipelineParameter(name, value)
        else:
            raise TypeError(f"parameter {name!r}: declare int, float, bool, str, got {value!r}")
    return params
