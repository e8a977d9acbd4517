"""Reading a sweep spec's ``pipeline:`` block and the pipeline parameters in its grid.

Shape::

    pipeline:
      name: map_reduce          # single | map_reduce | rag | sections | pkg.module:function
      mode: parallel            # any parameter the pipeline declares, fixed here ...
    grid:
      chunk_size: [2000, 3000]  # ... or varied in the grid
      chunk_overlap: [200]

Everything is checked before anything runs: the pipeline must exist (a user pipeline is
imported), every parameter must be declared by it, values must follow their rules,
prompts may use only their variables, and every expanded combination must satisfy the
cross-parameter rules (``chunk_overlap < chunk_size``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.pipelines._builtins import PROMPT_VARIABLES
from evaluation.pipelines._parameters import REQUIRED, PipelineParameter, check_combination
from evaluation.pipelines._registry import PipelineNotFound, resolve
from evaluation.pipelines._retrieval import load_corpus
from evaluation.pipelines._setting import SINGLE, PipelineSpec
from evaluation.spec_fields import FieldReader, FormattedField, child, item, template_fields


def parse_pipeline(
    reader: FieldReader,
    raw: Any,
    grid: dict[str, Any],
    base_dir: str | Path | None,
    grid_names: tuple[str, ...],
) -> PipelineSpec | None:
    """The pipeline of a spec (None: ``single`` with nothing set). ``grid`` holds the
    grid entries that are not generation parameters (``grid_names``)."""
    if raw is None and not grid:
        return None
    block = {"name": SINGLE} if raw is None else dict(reader.mapping(raw, "pipeline"))
    name = reader.text(block.pop("name", None) or SINGLE, "pipeline.name")
    try:
        pipeline = resolve(name)
    except PipelineNotFound as exc:
        raise reader.error("pipeline.name", str(exc)) from exc
    declared = pipeline.parameters
    allowed = (*grid_names, *declared)
    for key in grid:
        if key not in declared:
            reader.mapping({key: None}, "grid", allowed=allowed)  # unknown key, with a hint
    for key in block:
        reader.check(
            key in declared,
            child("pipeline", key),
            f"pipeline {name} does not declare parameter '{key}'"
            + (f" (it declares: {', '.join(declared)})" if declared else " (it declares none)"),
        )
        reader.check(
            key not in grid,
            child("pipeline", key),
            f"'{key}' is both fixed here and varied in grid.{key}; keep one",
        )
    varied = tuple(
        (key, _values(reader, declared[key], grid[key], child("grid", key), base_dir))
        for key in declared
        if key in grid
    )
    fixed: dict[str, Any] = {}
    for key, param in declared.items():
        if key in block:
            fixed[key] = _value(reader, param, block[key], child("pipeline", key), base_dir)
        elif key not in grid:
            reader.check(
                param.default is not REQUIRED,
                child("pipeline", key),
                f"pipeline {name} needs '{key}' ({param.doc or param.rule})",
            )
            if param.default is not None and param.default != "":
                fixed[key] = param.default
    spec = PipelineSpec(name, tuple(fixed.items()), varied)
    for setting in spec.settings():
        if problem := check_combination(setting.params):
            key, message = problem
            where = child("grid", key) if key in grid else child("pipeline", key)
            raise reader.error(where, message)
    if name == SINGLE and not fixed and not varied:
        return None
    return spec


def _values(
    reader: FieldReader, param: PipelineParameter, raw: Any, field: str, base_dir: Any
) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        return (_value(reader, param, raw, field, base_dir),)
    values = [_value(reader, param, v, item(field, i), base_dir) for i, v in enumerate(raw)]
    reader.sequence(raw, field)
    if param.kind is not dict:
        reader.unique(values, field)
    return tuple(values)


def _value(
    reader: FieldReader, param: PipelineParameter, raw: Any, field: str, base_dir: Any
) -> Any:
    problem = param.problem(raw)
    reader.check(problem is None, field, problem or "")
    value = param.normalise(raw)
    if param.name in PROMPT_VARIABLES:
        prompts = value.items() if isinstance(value, dict) else [(None, value)]
        for key, text in prompts:
            _check_prompt(reader, param.name, text, child(field, key) if key else field)
    if param.name == "corpus":
        value = _corpus(reader, value, field, base_dir)
    return value


def _check_prompt(reader: FieldReader, name: str, text: str, field: str) -> None:
    allowed = PROMPT_VARIABLES[name]
    try:
        used = template_fields(text)
    except (FormattedField, ValueError) as exc:
        raise reader.error(
            field, f"not a valid prompt ({exc}); write {{{{ and }}}} for braces"
        ) from exc
    for variable in used:
        reader.check(
            variable in allowed,
            field,
            f"unknown variable {{{variable}}}; {name} may use "
            + ", ".join(f"{{{v}}}" for v in allowed),
        )


def _corpus(reader: FieldReader, value: str, field: str, base_dir: Any) -> str:
    """The corpus file, resolved against the spec's folder and read once to check it."""
    path = Path(value)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    path = path.resolve()
    reader.check(path.is_file(), field, f"corpus file not found: {path}")
    load_corpus(str(path))  # refuses a malformed corpus now, not mid-sweep
    return str(path)
