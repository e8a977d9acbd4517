"""Judges calibrated to people: a judge's scores combined with people's ratings of some
of the same outputs by prediction-powered inference (PPI++, ``_ppi``), per config and per
two configs (``_combined``), their texts for show, compare and the report (``_render``),
each interval as shown: cut to its scale, or why there is none (``_shown``),
ratings made elsewhere imported and checked (``_import``), the judge's report card
(``_card``) and which outputs people should rate next (``_plan``). docs/calibrated-judges.md.
Names are imported on first use."""

from __future__ import annotations

from evaluation._lazy import lazy_exports

_EXPORTS = {
    "PPIEstimate": "evaluation.calibration._ppi",
    "ppi_mean": "evaluation.calibration._ppi",
    "tuned_lambda": "evaluation.calibration._ppi",
    "CalibratedMetric": "evaluation.calibration._combined",
    "ConfigEstimate": "evaluation.calibration._combined",
    "DiffEstimate": "evaluation.calibration._combined",
    "calibrate": "evaluation.calibration._combined",
    "load_calibration": "evaluation.calibration._combined",
    "unit_scores": "evaluation.calibration._combined",
    "MIN_CALIBRATION": "evaluation.calibration._combined",
    "JudgeCard": "evaluation.calibration._card",
    "judge_card": "evaluation.calibration._card",
    "card_text": "evaluation.calibration._card",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
