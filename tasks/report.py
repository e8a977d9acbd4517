"""The HTML report as a task: write it and link it from the Prefect UI."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.report import write_report
from evaluation.review import store  # noqa: F401  (the report reads the ratings tables)
from evaluation.storage.db import session_scope
from evaluation.storage.models import Experiment
from tasks.results import artifact_key


def report_path(out_dir: Path, experiment: str) -> Path:
    """Where an experiment's report goes: ``<out_dir>/<artifact-key>.html``."""
    return Path(out_dir) / f"{artifact_key(experiment, 'report')}.html"


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(engine: Engine, experiment_id: int, out_dir: Path) -> Path:
    """Write the experiment's HTML report under ``out_dir`` and add a link artifact
    (key ``evalflow-<experiment>-report``) pointing at its ``file://`` URL."""
    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        path = write_report(session, name, report_path(out_dir, name)).resolve()
    create_link_artifact(
        key=artifact_key(name, "report"),
        link=path.as_uri(),
        link_text=f"HTML report of {name}",
        description=f"Leaderboard, significance, parameter effects, Pareto front, latency, "
        f"ratings and trends of {name}. The file is on the machine that ran the flow.",
    )
    get_run_logger().info("report written to %s", path)
    return path
