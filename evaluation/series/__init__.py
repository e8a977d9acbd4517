"""Series: one spec run again and again, and the watch over it. Which runs form a series
and what each really ran with (``_series``, tables in ``schema``), a suite's digest
(``_digest``), where two points stop being comparable (``_events``), greedy outputs that
changed between two runs (``_greedy``), asking the servers
what ran (``_what_ran``), change detection with false alarms controlled over configs ×
metrics × nights (``_watch``), the watch over a stored series (``_trends``): what it
found (``_stream_verdicts``), each night's per-case values (``_frames``), one stream's
verdict (``_stream``), accepted baselines (``_accepted``), a series watched on the
calibrated level (``_calibrated_level``); its verdict kept for the readers that need only
it (``_verdict``), the CI gate (``_gate``) and their renderings (``_render``). Names are
imported on first use."""

from __future__ import annotations

from evaluation._lazy import lazy_exports

_EXPORTS = {
    "Interval": "evaluation.series._series",
    "ModelRan": "evaluation.series._series",
    "SeriesKept": "evaluation.series._series",
    "SeriesNotFound": "evaluation.series._series",
    "SeriesPoint": "evaluation.series._series",
    "SeriesSummary": "evaluation.series._series",
    "grouped_experiments": "evaluation.series._series",
    "list_series": "evaluation.series._series",
    "point_of": "evaluation.series._series",
    "record_run": "evaluation.series._series",
    "refuse_another_series": "evaluation.series._series",
    "refuse_another_spec": "evaluation.series._series",
    "SpecKept": "evaluation.series._series",
    "record_calibrated_night": "evaluation.series._series",
    "series_experiments": "evaluation.series._series",
    "series_of_experiment": "evaluation.series._series",
    "series_names": "evaluation.series._series",
    "series_points": "evaluation.series._series",
    "SeriesEvent": "evaluation.series._events",
    "events_between": "evaluation.series._events",
    "series_events": "evaluation.series._events",
    "what_ran": "evaluation.series._what_ran",
    "suite_digest": "evaluation.series._digest",
    "WatchSettings": "evaluation.series._watch",
    "Night": "evaluation.series._stream_verdicts",
    "SeriesWatch": "evaluation.series._stream_verdicts",
    "StreamVerdict": "evaluation.series._stream_verdicts",
    "watch_series": "evaluation.series._trends",
    "evidence_figures": "evaluation.series._stream_verdicts",
    "series_verdict": "evaluation.series._verdict",
    "series_verdicts": "evaluation.series._verdict",
    "watch_and_keep": "evaluation.series._verdict",
    "GateCase": "evaluation.series._gate",
    "GateInputError": "evaluation.series._gate",
    "GateResult": "evaluation.series._gate",
    "gate": "evaluation.series._gate",
    "alarm_lines": "evaluation.series._render",
    "figure": "evaluation.series._render",
    "gate_junit": "evaluation.series._render",
    "gate_markdown": "evaluation.series._render",
    "gate_text": "evaluation.series._render",
    "sparkline": "evaluation.series._render",
    "stream_state": "evaluation.series._render",
    "runs_of": "evaluation.series._render",
    "baseline_words": "evaluation.series._render",
    "since_words": "evaluation.series._render",
    "moved_lines": "evaluation.series._render",
    "SubsetEstimates": "evaluation.series._calibrated_level",
    "ESCALATE_SHARE": "evaluation.series._watch",
    "trends_text": "evaluation.series._render",
    "watch_markdown": "evaluation.series._render",
    "watch_payload": "evaluation.series._render",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
