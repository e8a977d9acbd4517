"""Where an experiment's HTML report is kept: one file per experiment,
``$EVALFLOW_HOME/reports/evalflow-NAME-report.html``, which its run writes, a rescore
writes again and `evalflow report` brings up to date (docs/results.md)."""

from __future__ import annotations

from pathlib import Path

from evaluation.artifact_keys import artifact_key
from evaluation.settings import evalflow_home


def reports_folder() -> Path:
    """Where a run writes its report (``evaluate``) and a rescore writes it again."""
    return evalflow_home() / "reports"


def report_path(out_dir: Path, experiment: str) -> Path:
    """Where an experiment's report goes: ``<out_dir>/<artifact-key>.html``."""
    return Path(out_dir) / f"{artifact_key(experiment, 'report')}.html"
