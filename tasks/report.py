"""The report as a task: write the HTML file and publish its key content where the
Prefect UI can show it."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from sqlalchemy.engine import Engine

from evaluation.compare import ComparisonOutcome
from evaluation.report import gather, render_report
from evaluation.report.files import report_path
from evaluation.report.summary import render_summary
from evaluation.run._heap import release_freed
from evaluation.storage.db import session_scope
from evaluation.storage.models import Experiment
from tasks.results import artifact_key

LINKED_ARTIFACTS = {
    "leaderboard": "Leaderboard, every metric",
    "table": "Per-config table",
    "comparison": "Paired comparisons",
}


def ui_links(experiment: str) -> dict[str, str]:
    """Links into the Prefect UI: the experiment's other artifacts and this flow run.
    Absolute when the UI's address is known (``PREFECT_UI_URL``, derived from
    ``PREFECT_API_URL``), else relative to the UI the artifact is read in."""
    base = (PREFECT_UI_URL.value() or "").rstrip("/")
    links = {
        text: f"{base}/artifacts/key/{artifact_key(experiment, kind)}"
        for kind, text in LINKED_ARTIFACTS.items()
    }
    if flow_run.get_id():
        links["The flow run (logs, every artifact)"] = f"{base}/runs/flow-run/{flow_run.get_id()}"
    return links


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(
    engine: Engine,
    experiment_id: int,
    out_dir: Path,
    comparison: ComparisonOutcome | None = None,
    ending_status: str | None = None,
) -> Path:
    """Write the experiment's HTML report under ``out_dir`` and publish its summary as
    the markdown artifact ``evalflow-<experiment>-report``: verdict, leaderboard top,
    parameter effects, Pareto front, links to the other artifacts, the file's path.
    ``comparison``: the experiment's comparison, if the caller has just computed it.
    ``ending_status``: the status the run ends with once the report is out (the report
    is the run's last step, so the stored status still says "running" while it is made)."""
    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        data = gather(session, name, comparison=comparison)
        if ending_status is not None:
            if data.experiment in session:
                session.expunge(data.experiment)  # shown with its final status, not stored
            data.experiment.status = ending_status
    path = report_path(out_dir, name).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    create_markdown_artifact(
        key=artifact_key(name, "report"),
        markdown=render_summary(data, links=ui_links(name), report_file=str(path))
        + (f"\n\n{data.race.markdown()}" if data.race else ""),
        description=f"Report of {name}" + (" (SIMULATED)" if data.experiment.simulated else ""),
    )
    get_run_logger().info("report written to %s", path)
    del data
    release_freed()  # the report's data back to the system (evaluation/run/_heap.py)
    return path
