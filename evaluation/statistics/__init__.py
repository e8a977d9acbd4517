"""Statistics for comparing configurations: error bars, paired tests, multiplicity, power,
parameter effects, Pareto fronts and their report. Plain Python (numpy, pandas, scipy,
statsmodels); formulas after E. Miller, "Adding Error Bars to Evals", arXiv 2411.00640.

Input: long score rows (config, case_id, sample_index, group, metric, value) and, for
parameter effects and Pareto fronts, one row of facts per config.
"""

from evaluation.statistics._cases import CaseTable, case_table
from evaluation.statistics.analysis import StatisticsReport, analyze
from evaluation.statistics.effects import ParameterEffect, parameter_effects, spearman_interval
from evaluation.statistics.intervals import (
    MeanEstimate,
    corpus_interval,
    mean_interval,
    summarize,
    summarize_config,
)
from evaluation.statistics.multiple import (
    AdjustedComparison,
    Adjustment,
    MultiComparison,
    adjust_p_values,
    compare_many,
)
from evaluation.statistics.paired import (
    PairedComparison,
    PairedTest,
    ScoreType,
    ZeroMethod,
    choose_test,
    compare_in_table,
    compare_pair,
    compare_scores,
    rank_biserial,
)
from evaluation.statistics.pareto import ParetoFront, pareto_front, pareto_fronts
from evaluation.statistics.power import (
    PowerAnalysis,
    cases_needed,
    mcnemar_power,
    min_detectable_difference,
    paired_diff_variance,
    power_analysis,
    power_for_test,
    power_from_pilot,
    power_from_variances,
    predicted_power,
    t_power,
)
from evaluation.statistics.report import render_markdown, table_rows

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
