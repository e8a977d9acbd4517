"""Comparing configurations on stored results: which configs a comparison takes
(``_config_refs``), what it is computed from and the digest of that (``_inputs``), paired
comparisons with their verdicts (``_comparison``), stored and read back while their
inputs are unchanged (``_stored``), the
leaderboard (``_leaderboard``), the nightly regression check (``_regression``) and power
planning before a run (``_power_plan``, on ``evaluation.statistics.power``). Names are
imported on first use."""

from __future__ import annotations

from evaluation._lazy import lazy_exports

_EXPORTS = {
    "SelectedConfig": "evaluation.compare._config_refs",
    "find_experiment": "evaluation.compare._config_refs",
    "parse_selections": "evaluation.compare._config_refs",
    "select_configs": "evaluation.compare._config_refs",
    "check_shared_cases": "evaluation.compare._config_refs",
    "resolve_baseline": "evaluation.compare._config_refs",
    "one_baseline": "evaluation.compare._config_refs",
    "ComparisonInputs": "evaluation.compare._inputs",
    "selection_inputs": "evaluation.compare._inputs",
    "ComparisonOutcome": "evaluation.compare._comparison",
    "compare_experiment": "evaluation.compare._comparison",
    "compare_inputs": "evaluation.compare._comparison",
    "compare_stored": "evaluation.compare._comparison",
    "CurrentComparison": "evaluation.compare._stored",
    "current_comparison": "evaluation.compare._stored",
    "save_comparison": "evaluation.compare._stored",
    "Leaderboard": "evaluation.compare._leaderboard",
    "SIMULATED_BANNER": "evaluation.compare._leaderboard",
    "aggregate_rows": "evaluation.compare._leaderboard",
    "is_corpus_metric": "evaluation.compare._leaderboard",
    "load_leaderboard": "evaluation.compare._leaderboard",
    "stored_board": "evaluation.compare._leaderboard",
    "table_rows": "evaluation.compare._leaderboard",
    "RegressionDetected": "evaluation.compare._regression",
    "RegressionReport": "evaluation.compare._regression",
    "RunData": "evaluation.compare._regression",
    "Thresholds": "evaluation.compare._regression",
    "check_regression": "evaluation.compare._regression",
    "load_run": "evaluation.compare._regression",
    "p95_latency": "evaluation.compare._regression",
    "PowerPlan": "evaluation.compare._power_plan",
    "plan_for_spec": "evaluation.compare._power_plan",
    "plan_power": "evaluation.compare._power_plan",
    "render_power": "evaluation.compare._power_plan",
    "render_comparison_text": "evaluation.compare._text",
    "rounded_comparison_rows": "evaluation.compare._text",
    "verdicts_by_metric": "evaluation.compare._text",
}

__all__ = [
    "SIMULATED_BANNER",
    "ComparisonInputs",
    "ComparisonOutcome",
    "CurrentComparison",
    "Leaderboard",
    "PowerPlan",
    "RegressionDetected",
    "RegressionReport",
    "RunData",
    "SelectedConfig",
    "Thresholds",
    "aggregate_rows",
    "check_regression",
    "check_shared_cases",
    "compare_experiment",
    "compare_inputs",
    "compare_stored",
    "current_comparison",
    "find_experiment",
    "is_corpus_metric",
    "load_leaderboard",
    "load_run",
    "one_baseline",
    "p95_latency",
    "parse_selections",
    "plan_for_spec",
    "plan_power",
    "render_comparison_text",
    "render_power",
    "resolve_baseline",
    "rounded_comparison_rows",
    "save_comparison",
    "select_configs",
    "selection_inputs",
    "stored_board",
    "table_rows",
    "verdicts_by_metric",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
