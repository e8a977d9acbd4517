"""Sweep specs: what to run. A YAML file (shape: ``_model``'s docstring) is read and
validated by ``load_spec`` and expanded into ``Config``s; the generation parameters, with
everything the code needs to know about each, are the one table in ``_params``.

The reader (``_load``) is imported on first use: it checks metric names, and the metrics
(through the backends) name the spec's own types, so loading it here would close a cycle.
"""

from __future__ import annotations

from evaluation._lazy import lazy_exports
from evaluation.spec._model import (
    DEFAULT_TEMPLATES,
    TEMPLATE_VARIABLES,
    BackendKind,
    Config,
    HostSpec,
    Limits,
    Plan,
    PromptTemplate,
    SweepSpec,
    baseline_config,
    config_count,
    default_hosts,
    expand,
    format_plan,
    make_plan,
    sweep_shape,
)
from evaluation.spec._names import MAX_NAME_LENGTH, NAME_PATTERN, experiment_name_problem
from evaluation.spec._params import (
    DEFAULT_NUM_PREDICT,
    GRID_ORDER,
    PARAMETERS,
    RULES,
    GenerationParams,
    Parameter,
    Rule,
    param,
    sample_seed,
)
from evaluation.spec._strategy import Strategy

__all__ = [
    "DEFAULT_NUM_PREDICT",
    "DEFAULT_TEMPLATES",
    "GRID_ORDER",
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "PARAMETERS",
    "RULES",
    "TEMPLATE_VARIABLES",
    "BackendKind",
    "Config",
    "GenerationParams",
    "HostSpec",
    "Limits",
    "Parameter",
    "Plan",
    "PromptTemplate",
    "Rule",
    "Strategy",
    "SweepSpec",
    "baseline_config",
    "config_count",
    "default_hosts",
    "expand",
    "experiment_name_problem",
    "format_plan",
    "load_spec",
    "make_plan",
    "param",
    "parse_spec",
    "sample_seed",
    "sweep_shape",
]


__getattr__, __dir__ = lazy_exports(
    __name__,
    {"load_spec": "evaluation.spec._load", "parse_spec": "evaluation.spec._load"},
    globals(),
)
