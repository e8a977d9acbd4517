"""The monitor: every run of every sweep, live and over time. A run writes where it
stands while it goes (``_live``: stage, progress, rate, ETA, cases in flight per host,
failures by reason, GPU readings) and a summary as it ends (``_summary``); the home page
(``_home``) and a run's live page (``_pages``, mounted on the view app, with small
inline charts from ``_svg``) read those rows, never the generations; starting and
cancelling a deployment's run from the page goes through a ``RunControl`` that flows/
gives (``_control``: evaluation/ knows no Prefect) behind a CSRF token and Host and
Origin checks; `evalflow status` prints the same facts (``_facts``; as text, ``_status``).
Names are imported on first use."""

from __future__ import annotations

from evaluation._lazy import lazy_exports

_EXPORTS = {
    "STAGES": "evaluation.monitor._live",
    "LiveRun": "evaluation.monitor._live",
    "set_stage": "evaluation.monitor._live",
    "failure_reason": "evaluation.monitor._live",
    "gpu_readings": "evaluation.monitor._live",
    "store_summary": "evaluation.monitor._summary",
    "refresh_summaries": "evaluation.monitor._summary",
    "Home": "evaluation.monitor._home",
    "home": "evaluation.monitor._home",
    "running_runs": "evaluation.monitor._home",
    "ControlRefused": "evaluation.monitor._control",
    "RunControl": "evaluation.monitor._control",
    "StartedRun": "evaluation.monitor._control",
    "FlowRunState": "evaluation.monitor._control",
    "add_monitor": "evaluation.monitor._pages",
    "run_facts": "evaluation.monitor._facts",
    "status_text": "evaluation.monitor._status",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
