"""Sweep specs: what to run. A YAML file (shape: ``_model``'s docstring) is read and
validated by ``load_spec`` and expanded into ``Config``s; the generation parameters, with
everything the code needs to know about each, are the one table in ``_params``.

Every name is imported on first use: the reader (``_load``) checks metric names, and the
metrics (through the backends) name the spec's own types, so loading it here would close
a cycle; and a command that needs one constant (the CLI's parser: the name pattern)
does not pay for the rest (``_model`` reads YAML and pipeline settings).
"""

from __future__ import annotations

from evaluation._lazy import lazy_exports

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
    "PlanSubset",
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
    {
        "BackendKind": "evaluation.spec._model",
        "Config": "evaluation.spec._model",
        "DEFAULT_NUM_PREDICT": "evaluation.spec._params",
        "DEFAULT_TEMPLATES": "evaluation.spec._model",
        "GRID_ORDER": "evaluation.spec._params",
        "GenerationParams": "evaluation.spec._params",
        "HostSpec": "evaluation.spec._model",
        "Limits": "evaluation.spec._model",
        "MAX_NAME_LENGTH": "evaluation.spec._names",
        "NAME_PATTERN": "evaluation.spec._names",
        "PARAMETERS": "evaluation.spec._params",
        "Parameter": "evaluation.spec._params",
        "Plan": "evaluation.spec._model",
        "PlanSubset": "evaluation.spec._model",
        "PromptTemplate": "evaluation.spec._model",
        "RULES": "evaluation.spec._params",
        "Rule": "evaluation.spec._params",
        "Strategy": "evaluation.spec._strategy",
        "SweepSpec": "evaluation.spec._model",
        "TEMPLATE_VARIABLES": "evaluation.spec._model",
        "baseline_config": "evaluation.spec._model",
        "config_count": "evaluation.spec._model",
        "default_hosts": "evaluation.spec._model",
        "expand": "evaluation.spec._model",
        "experiment_name_problem": "evaluation.spec._names",
        "format_plan": "evaluation.spec._model",
        "load_spec": "evaluation.spec._load",
        "make_plan": "evaluation.spec._model",
        "param": "evaluation.spec._params",
        "parse_spec": "evaluation.spec._load",
        "sample_seed": "evaluation.spec._params",
        "sweep_shape": "evaluation.spec._model",
    },
    globals(),
)
