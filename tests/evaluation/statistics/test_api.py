import subprocess
import sys

import evaluation.statistics as statistics

EXPECTED = {
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
    "mean_interval",
    "mcnemar_power",
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
}


def test_public_names():
    assert set(statistics.__all__) == EXPECTED
    assert all(hasattr(statistics, name) for name in statistics.__all__)


def test_importing_the_package_does_not_import_prefect():
    code = "import sys, evaluation.statistics; assert 'prefect' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
