"""Finding a pipeline by name: a built-in, or a user's ``package.module:function``."""

from __future__ import annotations

import importlib
import inspect
import re
import traceback

from evaluation.pipelines import _builtins
from evaluation.pipelines._contract import Pipeline, declared
from evaluation.pipelines._parameters import PARAMETERS

_PROMPTS = ("map_prompt", "reduce_prompt", "refine_prompt")
BUILTINS: dict[str, Pipeline] = {
    p.name: p
    for p in (
        Pipeline("single", _builtins.single, {}),
        Pipeline(
            "map_reduce",
            _builtins.map_reduce,
            {n: PARAMETERS[n] for n in ("chunk_size", "chunk_overlap", "unit", "mode", *_PROMPTS)},
        ),
        Pipeline(
            "rag",
            _builtins.rag,
            {
                n: PARAMETERS[n]
                for n in ("corpus", "embed_model", "chunk_size", "chunk_overlap", "unit",
                          "retrieve_k", "min_similarity", "answer_prompt")
            },
        ),
        Pipeline(
            "sections",
            _builtins.sections,
            {n: PARAMETERS[n] for n in ("sections", "parallel", "assembly_prompt")},
        ),
    )
}  # fmt: skip

_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class PipelineNotFound(LookupError):
    """The name is no built-in and does not import as an async function."""


def _import_problem(exc: Exception) -> str:
    """One line on why importing a user's module failed (a SyntaxError's file and line)."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f"{frame[0].filename}:{frame[0].lineno}: " if frame else ""
    text = " ".join(str(exc).split())
    return f"{where}{type(exc).__name__}" + (f": {text}" if text else "")


def resolve(name: str) -> Pipeline:
    """The pipeline ``name`` names; ``PipelineNotFound`` says why not."""
    if name in BUILTINS:
        return BUILTINS[name]
    if not _IMPORT_PATH.fullmatch(name):
        raise PipelineNotFound(
            f"unknown pipeline {name!r}: one of {', '.join(BUILTINS)}, or "
            "'package.module:function' for your own"
        )
    module_name, function_name = name.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineNotFound(f"pipeline {name!r}: cannot import {module_name}: {exc}") from exc
    except Exception as exc:  # the user's module raised at import: say what and where
        raise PipelineNotFound(
            f"pipeline {name!r}: cannot import {module_name}: {_import_problem(exc)}"
        ) from exc
    function = getattr(module, function_name, None)
    if function is None:
        raise PipelineNotFound(f"pipeline {name!r}: {module_name} has no {function_name}")
    if not inspect.iscoroutinefunction(function):
        raise PipelineNotFound(
            f"pipeline {name!r} is not an async function (async def {function_name}"
            "(case, params, llm))"
        )
    problem = _signature_problem(function)
    if problem is not None:
        raise PipelineNotFound(
            f"pipeline {name!r}: {problem}; it is called as {function_name}(case, params, llm)"
        )
    return Pipeline(
        name, function, getattr(function, "__pipeline_parameters__", None) or declared({})
    )


def _signature_problem(function: object) -> str | None:
    """Why ``function`` cannot be called with (case, params, llm) by position, or None
    (checked when the spec is read: else every case of the sweep fails the same way)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # no signature to read: let the call tell
        return None
    try:
        signature.bind(None, None, None)
    except TypeError as exc:
        return f"its signature {signature} does not take three arguments ({exc})"
    return None
