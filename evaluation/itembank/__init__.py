"""Item banks: a suite's cases calibrated from every config ever run on it (a 2PL item
response model fitted by hand with numpy and scipy), the ``calibrated`` level that runs
the first cases of the seeded stratified order, and full-suite estimates with intervals
from them. The parts that fit load scipy on first use; ``schema`` holds the tables. See
docs/calibrated-subsets.md."""

from evaluation._lazy import lazy_exports

__all__ = [
    "MIN_CONFIGS",
    "SUBSET_INTERVAL",
    "Bank",
    "BankEstimates",
    "BankRefused",
    "Calibration",
    "ConfigEstimate",
    "Estimate",
    "ItemFit",
    "calibrate",
    "calibrate_bank",
    "calibrated_cases",
    "calibrated_estimate",
    "calibrated_size",
    "cases_for_width",
    "current_bank",
    "estimate_weights",
    "estimates_heading",
    "estimates_text",
    "experiment_estimates",
    "fit_2pl",
    "how_to_bank",
    "model_family",
    "most_informative",
    "named_estimates",
    "shown_estimates_text",
    "stored_scores",
    "subset_mean",
    "sweep_cases",
    "sweep_metric",
    "sweep_reason",
    "why_not",
]

_BANK = "evaluation.itembank._bank"
_CAL = "evaluation.itembank._calibrate"
_STORED = "evaluation.itembank._stored_bank"
_EST = "evaluation.itembank._estimate"
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MIN_CONFIGS": _STORED,
        "SUBSET_INTERVAL": _BANK,
        "Calibration": _CAL,
        "calibrate": _CAL,
        "most_informative": _CAL,
        "Estimate": _EST,
        "calibrated_estimate": _EST,
        "estimate_weights": _EST,
        "BankEstimates": "evaluation.itembank._nights",
        "subset_mean": _EST,
        "ItemFit": "evaluation.itembank._fit",
        "fit_2pl": "evaluation.itembank._fit",
        "calibrated_cases": "evaluation.itembank._level",
        "calibrated_size": "evaluation.itembank._level",
        "how_to_bank": "evaluation.itembank._level",
        "sweep_cases": "evaluation.itembank._level",
        "sweep_metric": "evaluation.itembank._level",
        "sweep_reason": "evaluation.itembank._level",
        **{name: _STORED for name in ("Bank", "current_bank", "model_family", "why_not")},
        **{
            name: _BANK
            for name in (
                "BankRefused",
                "ConfigEstimate",
                "calibrate_bank",
                "cases_for_width",
                "estimates_heading",
                "estimates_text",
                "experiment_estimates",
                "named_estimates",
                "shown_estimates_text",
                "stored_scores",
            )
        },
    },
    globals(),
)
