"""Statistics for comparing configurations: error bars, paired tests, multiplicity, power,
parameter effects, Pareto fronts and their report. Plain Python (numpy, pandas, scipy,
statsmodels); formulas after E. Miller, "Adding Error Bars to Evals", arXiv 2411.00640.

Input: long score rows (config, case_id, sample_index, group, metric, value) and, for
parameter effects and Pareto fronts, one row of facts per config.
"""

from importlib import import_module
from typing import Any

# Where each name lives. The package imports a module when one of its names is first used:
# scipy.stats and statsmodels take seconds to import, and the CLI's read-only verbs need
# only the intervals.
_WHERE = {
    "CaseTable": "_cases",
    "case_table": "_cases",
    "StatisticsReport": "analysis",
    "analyze": "analysis",
    "ParameterEffect": "effects",
    "parameter_effects": "effects",
    "spearman_interval": "effects",
    "MeanEstimate": "intervals",
    "corpus_interval": "intervals",
    "mean_interval": "intervals",
    "summarize": "intervals",
    "summarize_config": "intervals",
    "AdjustedComparison": "multiple",
    "Adjustment": "multiple",
    "MultiComparison": "multiple",
    "adjust_p_values": "multiple",
    "compare_many": "multiple",
    "PairedComparison": "paired",
    "PairedTest": "paired",
    "ScoreType": "paired",
    "ZeroMethod": "paired",
    "choose_test": "paired",
    "compare_in_table": "paired",
    "compare_pair": "paired",
    "compare_scores": "paired",
    "rank_biserial": "paired",
    "ParetoFront": "pareto",
    "pareto_front": "pareto",
    "pareto_fronts": "pareto",
    "PowerAnalysis": "power",
    "cases_needed": "power",
    "mcnemar_power": "power",
    "min_detectable_difference": "power",
    "paired_diff_variance": "power",
    "power_analysis": "power",
    "power_for_test": "power",
    "power_from_pilot": "power",
    "power_from_variances": "power",
    "predicted_power": "power",
    "t_power": "power",
    "render_markdown": "report",
    "table_rows": "report",
}


__all__ = [
    "AdjustedComparison",
    "Adjustment",
    "CaseTable",
    "MeanEstimate",
    "MultiComparison",
    "PairedComparison",
    "PairedTest",
    "ParameterEffect",
    "ParetoFront",
    "PowerAnalysis",
    "ScoreType",
    "StatisticsReport",
    "ZeroMethod",
    "adjust_p_values",
    "analyze",
    "case_table",
    "cases_needed",
    "choose_test",
    "compare_in_table",
    "compare_many",
    "compare_pair",
    "compare_scores",
    "corpus_interval",
    "mcnemar_power",
    "mean_interval",
    "min_detectable_difference",
    "paired_diff_variance",
    "parameter_effects",
    "pareto_front",
    "pareto_fronts",
    "power_analysis",
    "power_for_test",
    "power_from_pilot",
    "power_from_variances",
    "predicted_power",
    "rank_biserial",
    "render_markdown",
    "spearman_interval",
    "summarize",
    "summarize_config",
    "t_power",
    "table_rows",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
