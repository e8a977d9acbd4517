"""Reading a sweep spec's ``pipeline:`` block and the pipeline parameters in its grid.

Shape::

    pipeline:
      name: map_reduce          # single | map_reduce | rag | sections | pkg.module:function
      mode: parallel            # any parameter the pipeline declares, fixed here ...
    grid:
      chunk_size: [2000, 3000]  # ... or varied in the grid
      chunk_overlap: [200]

Everything is checked before anything runs: the pipeline must exist (a user pipeline is
imported), every parameter must be declared by it, values must follow their rules
(those of the generation-parameter table for chunk_size & co., whose cross-parameter
rules ``expand`` checks), and prompts may use only their variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.errors import SpecError
from evaluation.input_files import special_file
from evaluation.pipelines._builtins import PROMPT_VARIABLES
from evaluation.pipelines._parameters import PARAMETERS, REQUIRED, PipelineParameter
from evaluation.pipelines._registry import PipelineNotFound, resolve
from evaluation.pipelines._retrieval import load_corpus
from evaluation.pipelines._setting import SINGLE, PipelineSpec
from evaluation.spec._fields import FieldReader, FormattedField, child, item, template_fields
from evaluation.spec._grid import GRID_ORDER, grid_values

TABLE_PARAMETERS = tuple(name for name, p in PARAMETERS.items() if p.in_table)


def parse_pipeline(
    reader: FieldReader,
    raw: Any,
    grid: dict[str, Any],
    table_grid: dict[str, tuple[Any, ...]],
    base_dir: str | Path | None,
) -> tuple[PipelineSpec | None, dict[str, tuple[Any, ...]]]:
    """The pipeline of a spec (None: ``single`` with nothing set), and the values of the
    generation-table pipeline parameters to add to the grid (fixed in the block, or the
    pipeline's defaults). ``grid`` holds the raw grid entries that are not generation
    parameters; ``table_grid`` the generation grid already read."""
    table_set = [name for name in TABLE_PARAMETERS if name in table_grid]
    if raw is None and not grid and not table_set:
        return None, {}
    block = {"name": SINGLE} if raw is None else dict(reader.mapping(raw, "pipeline"))
    name = reader.text(block.pop("name", None) or SINGLE, "pipeline.name")
    try:
        pipeline = resolve(name)
    except PipelineNotFound as exc:
        raise reader.error("pipeline.name", str(exc)) from exc
    declared = pipeline.parameters
    listing = f" (it declares: {', '.join(declared)})" if declared else " (it declares none)"
    for key in grid:
        if key not in declared:
            reader.mapping({key: None}, "grid", allowed=(*GRID_ORDER, *declared))
    for key in table_set:
        reader.check(
            key in declared,
            child("grid", key),
            f"pipeline {name} does not declare parameter '{key}'{listing}",
        )
    for key in block:
        reader.check(
            key in declared,
            child("pipeline", key),
            f"pipeline {name} does not declare parameter '{key}'{listing}",
        )
        reader.check(
            key not in grid and key not in table_grid,
            child("pipeline", key),
            f"'{key}' is both fixed here and varied in grid.{key}; keep one",
        )
    varied = tuple(
        (key, _values(reader, declared[key], grid[key], child("grid", key), base_dir))
        for key in declared
        if key in grid
    )
    fixed: dict[str, Any] = {}
    table_values: dict[str, tuple[Any, ...]] = {}
    for key, param in declared.items():
        field = child("pipeline", key)
        if key in block and param.in_table:
            reader.check(
                not isinstance(block[key], list | dict), field, f"one value; vary it in grid.{key}"
            )
            table_values[key] = grid_values(reader, key, block[key], field, max_count=1)
        elif key in block:
            fixed[key] = _value(reader, param, block[key], field, base_dir)
        elif key not in grid and key not in table_grid:
            reader.check(
                param.default is not REQUIRED,
                field,
                f"pipeline {name} needs '{key}' ({param.doc or param.rule})",
            )
            if param.in_table:
                table_values[key] = (param.default,)
            elif param.default is not None and param.default != "":
                fixed[key] = param.default
    if name == SINGLE and not fixed and not varied:
        return None, table_values
    return PipelineSpec(name, tuple(fixed.items()), varied), table_values


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
    if isinstance(raw, int) and not isinstance(raw, bool):
        reader.integer(raw, field)  # refuses integers past any sane value
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
    path = reader.file_near_spec(value, base_dir)
    kind = special_file(path)
    reader.check(kind is None, field, f"{path} is {kind}; expected a JSONL corpus file")
    reader.check(path.is_file(), field, f"corpus file not found: {path}")
    try:
        load_corpus(str(path))  # refuses a malformed corpus now, not mid-sweep
    except SpecError as exc:  # names the corpus file and line
        raise reader.error(field, f"corpus {exc}") from exc
    return str(path)
